"""What one exchange may cost: the caps of the live client and of what is kept of its answer.

One place, so the client, the stored Exchange, the recording and the evidence agree. A server may
send up to `MAX_BODY_BYTES` per response before the client stops reading (a transport error). Of a
stream, every event goes through the stream rules as it arrives, but only the first
`KEEP_HEAD_EVENTS` events (at most `KEEP_HEAD_BYTES` of data) and the last `KEEP_TAIL_EVENTS` are
stored; the Exchange counts what it dropped, and the recording and the evidence say so. A non-stream
body is kept whole up to `MAX_BODY_BYTES` once parsed; its raw text only up to `KEEP_BODY_BYTES`.
"""

from __future__ import annotations

MAX_BODY_BYTES = 8 * 1024 * 1024
"""The client stops reading a response (body or stream) beyond this many bytes."""

KEEP_HEAD_EVENTS = 1000
"""Events kept from the start of a stream (the suite's answers have about 50)."""

KEEP_HEAD_BYTES = 1024 * 1024
"""Data bytes kept from the start of a stream, whatever the event count."""

KEEP_TAIL_EVENTS = 50
"""Events kept from the end of a stream, so its finish, usage and [DONE] stay visible."""

KEEP_BODY_BYTES = 1024 * 1024
"""Characters of a raw response text kept once the body parsed as JSON (or failed to)."""

EVIDENCE_EVENTS = 6
"""Events shown in a check's evidence (first, last and those around a violation)."""

EVIDENCE_TEXT = 600
"""Characters of a body, request or event shown in a check's evidence."""
