"""The mock's ASGI application.

The chat route is raw ASGI (it is the hot path of load tests: one pre-planned answer, one write
per event, absolute deadlines); the rest (models, stats) is a small Starlette app. Request
validation is the rules package's `first_request_error` + the profile's `errors:` table: the mock
holds no validation logic of its own, so it rejects exactly what `chatconf run` expects rejected.

Routes: POST {/compatible-mode/v1,/v1}/chat/completions (GET: 405), GET .../models, the same under
/_sim/<preset>/ (that latency preset instead of the server's own), GET /_mock/stats,
POST /_mock/stats/reset, GET/PUT /_mock/faults (the two that change state need a credential when
one is configured: see exposure.py).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..jsonutil import JSONError, depth_exceeds, dumpb, loads
from ..profiles import ErrorSpec, load_profile
from ..rules.request import PRIORITY, check_request, error_values, first_request_error
from .clock import Clock, clock_for, sleep_until
from .config import MockConfig, check_inject
from .exposure import control_denial
from .faults import Ctx, check_names, request_faults, rewrite_error, rewrite_response, rewrite_stream
from .latency import LatencyError, LatencyProfile, load_latency
from .plan import build_plan
from .render import TOK, Meta, completion, encode_item, error_body, stream_steps
from .replay import ReplayIndex
from .request_log import RequestLog
from .stats import Stats
from .timeline import DROP, NOT_TOKEN, Timeline, timeline

CHAT_PATHS = frozenset({"/compatible-mode/v1/chat/completions", "/v1/chat/completions"})
MODEL_PATHS = ("/compatible-mode/v1/models", "/v1/models")
SSE_TYPE = b"text/event-stream;charset=UTF-8"
JSON_TYPE = b"application/json"

# Errors the profile does not document (they are the mock's own, not a rule's).
_OWN_ERRORS = {
    "mock.method": ErrorSpec(405, "method_not_allowed", "invalid_request_error",
                             "Request method '{method}' is not supported."),
    "mock.replay-miss": ErrorSpec(404, "replay_not_found", "invalid_request_error",
                                  "No recorded response matches this request (replaying {source})."),
    "mock.preset": ErrorSpec(404, "not_found", "invalid_request_error",
                             "Unknown simulated latency preset {preset!r}."),
    "mock.unsupported-media": ErrorSpec(400, None, "invalid_request_error",
                                        "Required body invalid, please check the request body format."),
}
_FALLBACK = ErrorSpec(400, "invalid_parameter_error", "invalid_request_error", "{detail}")


class _Drop(Exception):
    """Raised inside a stream to make uvicorn cut the connection (injected `drop`)."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _Drop)


def _install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


def _epoch_ms() -> bytes:
    return str(int(time.time() * 1000)).encode()


class MockApp:
    """One configured mock. Build it once; it is an ASGI callable."""

    def __init__(self, config: MockConfig):
        self.config = config
        self.profile = load_profile(config.profile)
        self.latency = load_latency(config.latency)
        self.set_faults(config.faults)
        self.inject = check_inject(config.inject)
        self.replay = ReplayIndex.load(config.replay) if config.replay else None
        self.stats = Stats()
        self.requests = RequestLog(echo=config.log_requests)
        self._presets: dict[str, LatencyProfile] = {"default": self.latency}
        self._count = 0
        self._api_key = config.api_key.encode() if config.api_key else None
        self._max_body = int(config.max_body_bytes)
        self._other = Starlette(routes=[
            *(Route(p, self._models, methods=["GET"]) for p in MODEL_PATHS),
            Route("/_mock/stats", self._stats, methods=["GET"]),
            Route("/_mock/stats/reset", self._reset, methods=["POST"]),
            Route("/_mock/faults", self._faults, methods=["GET", "PUT"]),
            Route("/_mock/requests", self._requests, methods=["GET"]),
        ])
        _install_log_filter()

    def set_faults(self, names: Any) -> None:
        """Switch fault modes on a running in-process server (tests cycle through all of them)."""
        self.faults = check_names(names)
        self.skip_rules = request_faults(self.faults)
        self._verdicts: dict[bytes, tuple[str, Any] | None] = {}

    # -- routing --------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            return
        path: str = scope["path"]
        preset = "default"
        if path.startswith("/_sim/"):
            preset, _, rest = path[6:].partition("/")
            path = "/" + rest
            if self.preset(preset) is None:
                await self._send_error(send, "mock.preset", str(uuid.uuid4()), False, preset=preset)
                return
            scope = dict(scope, path=path)
        if path in CHAT_PATHS:
            if scope["method"] == "POST":
                await self._chat(scope, receive, send, preset)
            else:
                await self._send_error(send, "mock.method", str(uuid.uuid4()), False, method=scope["method"],
                                       extra=[(b"allow", b"POST")])
            return
        if path.startswith("/_sim/"):
            path = "/"  # nested prefixes are not routes
        await self._other(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    def preset(self, name: str) -> LatencyProfile | None:
        found = self._presets.get(name)
        if found is None:
            try:
                found = self._presets[name] = load_latency(name)
            except LatencyError:
                return None
        return found

    # -- small routes ---------------------------------------------------------------------------

    def _authorized(self, header: bytes | None) -> bool:
        if not header or header[:7].lower() != b"bearer ":
            return False
        token = header[7:].strip()
        if not token:
            return False
        return self._api_key is None or hmac.compare_digest(token, self._api_key)

    async def _models(self, request: Request) -> Response:
        rid = str(uuid.uuid4())
        if not self._authorized(request.headers.get("authorization", "").encode("latin-1")):
            status, body, _ = self._error_payload("auth.invalid-key", rid, False, {})
            return Response(body, status, media_type="application/json", headers={"x-request-id": rid})
        created = 1_700_000_000
        data = [{"id": name, "object": "model", "created": created, "owned_by": "system"}
                for name in self.profile.model_names]
        return JSONResponse({"object": "list", "data": data}, headers={"x-request-id": rid})

    async def _stats(self, request: Request) -> Response:
        presets = {name: lat.as_dict() for name, lat in self._presets.items()}
        return JSONResponse(self.stats.snapshot(self.latency.as_dict(), presets))

    def _control_refusal(self, request: Request) -> Response | None:
        """The error answer to a state-changing /_mock request without the control credential."""
        denied = control_denial(self.config, request.headers.get("authorization", ""))
        if denied is None:
            return None
        status, message = denied
        code = "invalid_api_key" if status == 401 else "control_disabled"
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                       "code": code}}, status_code=status)

    async def _reset(self, request: Request) -> Response:
        refused = self._control_refusal(request)
        if refused is not None:
            return refused
        self.stats.reset()
        self.requests.clear()
        return JSONResponse({"reset": True})

    async def _requests(self, request: Request) -> Response:
        """The last chat requests clients sent (their prompts: the control credential guards them)."""
        refused = self._control_refusal(request)
        if refused is not None:
            return refused
        limit = request.query_params.get("limit")
        if limit is not None and not limit.isdigit():
            return JSONResponse({"error": {"message": "limit must be a whole number", "type": "invalid_request_error",
                                           "param": "limit", "code": "invalid_value"}}, status_code=400)
        return JSONResponse(self.requests.snapshot(int(limit) if limit is not None else None))

    async def _faults(self, request: Request) -> Response:
        """GET the active fault modes; PUT {"faults": [...]} switches them on a running server, so
        the suite's mutation self-test reuses one mock process for every fault."""
        if request.method == "PUT":
            refused = self._control_refusal(request)
            if refused is not None:
                return refused
            try:
                names = (await request.json()).get("faults", [])
                self.set_faults(names)
            except Exception as exc:  # bad JSON, not a list, unknown fault name
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                return JSONResponse({"error": {"message": message, "type": "invalid_request_error",
                                               "param": "faults", "code": "invalid_fault"}}, status_code=400)
        return JSONResponse({"faults": list(self.faults)})

    # -- errors ---------------------------------------------------------------------------------

    def _spec(self, key: str) -> ErrorSpec:
        return self.profile.error(key) or _OWN_ERRORS.get(key) or _FALLBACK

    def _error_payload(self, key: str, rid: str, stream: bool, values: dict[str, Any]
                       ) -> tuple[int, bytes, bytes]:
        """(status, body bytes, content type) of the error answer for `key` under the active faults."""
        if key == "auth.invalid-key" and "auth.invalid-key" in self.faults:
            return 401, b"Unauthorized", b"text/plain; charset=utf-8"
        spec = self._spec(key)
        envelope = error_body(status=spec.status, code=spec.code, type_=spec.type,
                              message=spec.render(**values), param=spec.param, rid=rid)
        status, envelope, sse = rewrite_error(self.faults, spec.status, envelope, stream=stream)
        if "error.content-type" in self.faults:
            return status, dumpb(envelope), b"text/plain; charset=utf-8"
        if sse:
            return status, b"data: " + dumpb(envelope) + b"\n\n", SSE_TYPE
        return status, dumpb(envelope), JSON_TYPE

    async def _send_error(self, send: Any, key: str, rid: str, stream: bool, *,
                          extra: list[tuple[bytes, bytes]] | None = None, close: bool = False,
                          **values: Any) -> None:
        status, body, ctype = self._error_payload(key, rid, stream, values)
        headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                   (b"x-request-id", rid.encode()), (b"x-dashscope-call-gateway", b"true"), *(extra or [])]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # -- the chat route -------------------------------------------------------------------------

    async def _read_body(self, receive: Any) -> bytes | None:
        """The request body, or None once it exceeds the limit (stops reading right there)."""
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(parts)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                return None
            parts.append(chunk)
            if not message.get("more_body"):
                return b"".join(parts)

    def _verdict(self, raw: bytes, body: Any) -> tuple[str, Any] | None:
        """Validation result, memoized by exact body bytes: load tests repeat the same few bodies,
        and the verdict of a body never changes while the fault set stays the same."""
        if len(raw) > 16384:
            return self._validate(body)
        try:
            return self._verdicts[raw]
        except KeyError:
            pass
        found = self._validate(body)
        if len(self._verdicts) >= 4096:
            self._verdicts.clear()
        self._verdicts[raw] = found
        return found

    def _validate(self, body: Any) -> tuple[str, Any] | None:
        found = first_request_error(body, self.profile, check_model=True)
        if found is None or not self.skip_rules:
            return found
        if found[1].rule not in self.skip_rules:
            return found
        rank = {rule_id: i for i, rule_id in enumerate(PRIORITY)}
        rest = [v for v in check_request(body, self.profile, check_model=True) if v.rule not in self.skip_rules]
        if not rest:
            return None
        first = min(enumerate(rest), key=lambda item: (rank.get(item[1].rule, len(rank)), item[0]))[1]
        return (first.rule if self.profile.error(first.rule) else "request.schema"), first

    async def _chat(self, scope: dict[str, Any], receive: Any, send: Any, preset: str) -> None:
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        t0_ns = time.perf_counter_ns()
        arrive = _epoch_ms()
        rid = str(uuid.uuid4())
        self._count += 1
        number = self._count
        latency = self._presets[preset]
        bucket = self.stats.bucket(preset)
        bucket.requests += 1
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body:
            await self._send_error(send, "request.body-too-large", rid, False, close=True)
            return
        raw = await self._read_body(receive)
        if raw is None:
            await self._send_error(send, "request.body-too-large", rid, False, close=True)
            return
        body: Any = None
        try:
            body = loads(raw)
            parsed = not depth_exceeds(body)
        except JSONError:
            parsed = False
        stream = parsed and isinstance(body, dict) and body.get("stream") is True
        self.requests.add(scope["path"], headers, raw, body, parsed)
        if not self._authorized(headers.get(b"authorization")):
            await self._send_error(send, "auth.invalid-key", rid, stream)
            return
        ctype = headers.get(b"content-type", b"").lower()
        if not parsed or (ctype and b"json" not in ctype):
            key = "server.internal" if "request.malformed-json" in self.faults else "request.malformed-json"
            await self._send_error(send, key, rid, stream)
            return
        if self.replay is not None:
            await self._replay(send, body, rid, t0)
            return
        found = self._verdict(raw, body)
        if found is not None:
            key, violation = found
            values = error_values(violation, body, self.profile)
            await sleep_until(t0 + latency.network_rtt_ms / 1000.0)
            await self._send_error(send, key, rid, stream, **values)
            return
        rng = random.Random(f"{self.config.seed}|{number}")
        injected = self._injected(rng)
        if injected:
            await sleep_until(t0 + latency.network_rtt_ms / 1000.0)
            await self._send_error(send, injected, rid, stream)
            return
        text_rng = (random.Random(f"seed|{body['seed']}|{dumpb(body.get('messages'))!r}")
                    if isinstance(body.get("seed"), int) else rng)
        model = body.get("model") if isinstance(body.get("model"), str) and body.get("model") \
            else self.profile.default_model
        plan_body = body
        if ("stream.finish-length" if stream else "response.finish-length") in self.faults:
            plan_body = {k: v for k, v in body.items() if k != "max_tokens"}   # the fault: ignore the cap
        plan = build_plan(plan_body, self.profile, latency, text_rng)
        meta = Meta(f"chatcmpl-{rid}", int(time.time()), model)
        include_usage = isinstance(body.get("stream_options"), dict) and \
            body["stream_options"].get("include_usage") is True
        ctx = Ctx(meta, plan, include_usage)
        common = [(b"x-dashscope-call-gateway", b"true"), (b"req-arrive-time", arrive)]
        if stream or "response.id-prefix" not in self.faults:
            request_id = str(uuid.uuid4()) if self._header_fault(stream) else rid
            common.insert(0, (b"x-request-id", request_id.encode()))
        if stream:
            bucket.streams += 1
            await self._stream(send, receive, ctx, latency, rng, t0, t0_ns, common, bucket, clock_for(loop))
        else:
            await self._complete(send, ctx, latency, rng, t0, common)

    def _header_fault(self, stream: bool) -> bool:
        return ("stream.request-id" if stream else "response.request-id") in self.faults

    def _injected(self, rng: random.Random) -> str | None:
        roll = rng.random()
        for key, error in (("429", "server.rate-limit"), ("429_burst", "server.burst-rate"),
                           ("500", "server.internal"), ("503", "server.overloaded")):
            rate = self.inject.get(key, 0.0)
            if roll < rate:
                return error
            roll -= rate
        return None

    async def _complete(self, send: Any, ctx: Ctx, latency: LatencyProfile, rng: random.Random, t0: float,
                        common: list[tuple[bytes, bytes]]) -> None:
        info = self.profile.model(ctx.meta.model)
        payload = completion(ctx.plan, ctx.meta, reasoning=info.thinking_non_stream)
        payload = rewrite_response(self.faults, payload, ctx)
        if not latency.is_zero:
            per_event = latency.tokens_per_event
            longest = max(len(c.reasoning) + len(c.content) + 3 * len(c.tool_calls) for c in ctx.plan.choices)
            events = max(1, -(-longest // per_event))
            deadline = t0 + latency.first_token_s(rng) + sum(latency.gap_s(rng) for _ in range(events - 1))
            await sleep_until(deadline)
            if self.inject.get("slow_headers") and rng.random() < self.inject["slow_headers"]:
                await asyncio.sleep(self.inject["slow_headers_s"])
        elif self.inject.get("slow_headers") and rng.random() < self.inject["slow_headers"]:
            await asyncio.sleep(self.inject["slow_headers_s"])
        body = dumpb(payload)
        ctype = b"text/plain; charset=utf-8" if "response.content-type" in self.faults else JSON_TYPE
        cost = str(int((time.monotonic() - t0) * 1000)).encode()
        headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *common,
                   (b"req-cost-time", cost), (b"resp-start-time", _epoch_ms())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _stream_incidents(self, rng: random.Random, n_tok: int) -> dict[str, int]:
        """Which injected stream incidents hit this stream, and at which token step."""
        out: dict[str, int] = {}
        for key in ("drop", "stall", "midstream_error", "slow_headers"):
            rate = self.inject.get(key, 0.0)
            if rate and rng.random() < rate:
                out[key] = rng.randint(1, max(1, n_tok - 1))
        return out

    def _timeline(self, ctx: Ctx, latency: LatencyProfile, rng: random.Random, t0: float) -> Timeline:
        """What to write when; the Steps are dropped once laid out (they would outlive the stream's
        setup for nothing)."""
        steps = stream_steps(ctx.plan, ctx.meta, include_usage=ctx.include_usage,
                             per_event=latency.tokens_per_event, encoded=not self.faults)
        if self.faults:
            steps = rewrite_stream(self.faults, steps, ctx)
        incidents = self._stream_incidents(rng, sum(1 for s in steps if s.kind == TOK)) if self.inject else {}
        return timeline(steps, latency, rng, t0, incidents=incidents, stall_s=self.inject.get("stall_s", 0.0),
                        slow_headers_s=self.inject.get("slow_headers_s", 0.0))

    async def _stream(self, send: Any, receive: Any, ctx: Ctx, latency: LatencyProfile, rng: random.Random,
                      t0: float, t0_ns: int, common: list[tuple[bytes, bytes]], bucket: Any,
                      clock: Clock) -> None:
        writes = self._timeline(ctx, latency, rng, t0)
        ctype = JSON_TYPE if "stream.content-type" in self.faults else SSE_TYPE
        start = {"type": "http.response.start", "status": 200,
                 "headers": [(b"content-type", ctype), (b"cache-control", b"no-cache"), *common,
                             (b"resp-start-time", _epoch_ms())]}
        zero = latency.is_zero
        watcher = None if zero else asyncio.ensure_future(receive())
        monotonic, perf_ns = time.monotonic, time.perf_counter_ns
        last_tok_ns = 0
        started = False
        try:
            for target, payload, mark in writes:
                if mark < NOT_TOKEN:
                    if mark == DROP:
                        raise _Drop()
                    await send({"type": "http.response.body", "body": self._midstream_error(ctx),
                                "more_body": False})
                    return
                if watcher is not None and watcher.done():
                    return   # the client went away
                waiter = clock.waiter(target)
                if waiter is not None:
                    await waiter
                if not started:
                    await send(start)
                    started = True
                await send({"type": "http.response.body", "body": payload, "more_body": True})
                if mark >= 0:
                    now_ns = perf_ns()
                    if mark == 0:
                        bucket.add(bucket.ttft, (now_ns - t0_ns) / 1e6)
                    else:
                        bucket.add(bucket.itl, (now_ns - last_tok_ns) / 1e6)
                    if not zero:
                        bucket.add(bucket.late, abs(monotonic() - target) * 1000.0)
                    last_tok_ns = now_ns
            if not started:
                await send(start)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if watcher is not None and not watcher.done():
                watcher.cancel()

    def _midstream_error(self, ctx: Ctx) -> bytes:
        spec = self._spec("server.output-moderation")
        rid = ctx.meta.cid.removeprefix("chatcmpl-")
        return encode_item(error_body(status=spec.status, code=spec.code, type_=spec.type,
                                      message=spec.render(), param=spec.param, rid=rid))

    # -- replay ---------------------------------------------------------------------------------

    async def _replay(self, send: Any, body: Any, rid: str, t0: float) -> None:
        assert self.replay is not None
        rec = self.replay.match(body)
        stream = isinstance(body, dict) and body.get("stream") is True
        if rec is None:
            await self._send_error(send, "mock.replay-miss", rid, stream, source=self.replay.source)
            return
        headers = list(rec.headers)
        if not any(k == b"x-request-id" for k, _ in headers):
            headers.append((b"x-request-id", rid.encode()))
        if rec.events is None:
            body_bytes = rec.body or b""
            headers.append((b"content-length", str(len(body_bytes)).encode()))
            await send({"type": "http.response.start", "status": rec.status, "headers": headers})
            await send({"type": "http.response.body", "body": body_bytes})
            return
        await send({"type": "http.response.start", "status": rec.status, "headers": headers})
        for offset, data in rec.events:
            if offset is not None:
                await sleep_until(t0 + offset)
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def build_app(config: MockConfig) -> MockApp:
    return MockApp(config)
