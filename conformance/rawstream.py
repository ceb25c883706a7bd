"""An SSE body kept as it arrived (bytes and each read's arrival time), decoded when it is needed.

Why: the load worker and the proxy hold every stream in flight. As event objects (ten fields each,
plus their strings and times) a thousand streams are ~100,000 objects, and CPython's youngest
generation grows with them: its allocation counter also drops when older objects die, so under
steady churn a collection comes rarely and then visits every in-flight event at once, a pause
measured at 50-110 ms in the load worker (the TTFT p99 tail at 1,000 streams per core) and 1.4-5 ms
in the proxy at 100. Kept raw, a stream in flight is two buffers the collector barely sees. The load
client decodes a stream when it is scored; the proxy, which checks each event as it arrives, keeps
the raw stream only for the recording and decodes it in the recording thread.

Decoding later feeds `conformance.sse.SSEDecoder` the same pieces with the same arrival times, in
order, so the events are exactly the ones it would have produced as the bytes arrived. Past
`RAW_LIMIT` bytes a stream is decoded as it arrives instead, so a huge answer costs what it did before.
"""

from __future__ import annotations

from array import array

from conformance.sse import SSEDecoder, SSEEvent

RAW_LIMIT = 1024 * 1024
"""Bytes of one stream kept raw; beyond them the stream is decoded as it arrives."""


class RawStream:
    """`add(piece, t_ns)` per body piece as it arrives; `events()` once, at the end."""

    __slots__ = ("_data", "_decoder", "_events", "_marks")

    def __init__(self) -> None:
        self._data = bytearray()
        self._marks = array("q")  # per piece: its offset in _data, then its arrival time
        self._decoder: SSEDecoder | None = None
        self._events: list[SSEEvent] = []

    def add(self, piece: bytes, t_ns: int) -> None:
        if self._decoder is not None:
            self._events.extend(self._decoder.feed(piece, t_ns))
            return
        self._marks.append(len(self._data))
        self._marks.append(t_ns)
        self._data += piece
        if len(self._data) > RAW_LIMIT:
            self._decode_kept()

    @property
    def pieces(self) -> int:
        """Pieces kept raw (about one per event for a streaming server): what scoring this will cost."""
        return len(self._marks) // 2

    def events(self, *, close: bool = True) -> list[SSEEvent]:
        """Every event of the stream, each stamped as `SSEDecoder.feed` stamps it on arrival; with
        `close=False` without the unterminated last one that `SSEDecoder.close` would flush."""
        decoder = self._decode_kept()
        events = self._events
        if close:
            events.extend(decoder.close())
        self._events = []
        return events

    def _decode_kept(self) -> SSEDecoder:
        decoder = self._decoder
        if decoder is None:
            decoder = self._decoder = SSEDecoder()
            data, marks, events = bytes(self._data), self._marks, self._events
            last = len(marks) - 2
            for i in range(0, last + 2, 2):
                end = marks[i + 2] if i < last else len(data)
                events.extend(decoder.feed(data[marks[i]:end], marks[i + 1]))
            self._data = bytearray()
            self._marks = array("q")
        return decoder


__all__ = ["RAW_LIMIT", "RawStream"]
