"""The emulator server: one asyncio loop, HTTP/1.1 keep-alive, scenarios and faults."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import json
import logging
import socket
import struct
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from provider_impl.dialects import DIALECTS, ProviderDialect

if TYPE_CHECKING:
    from provider_impl.scenarios import Scenario

from provider_impl.reply_script import ReplyScript, prompt_tokens

from ._dialects import (
    Ctx,
    Dialect,
    ErrorResponse,
    Frame,
    IdGen,
    renderer_for,
)
from ._faults import (
    FAULTS,
    H_BOMB_MIB,
    H_FAIL_TIMES,
    H_FAULT,
    H_REQUEST_KEY,
    H_RETRY_AFTER,
    H_STATUS,
    RETRY_FAULTS,
    FaultPlan,
    Finish,
    KeepAlive,
    Reset,
    Send,
    Step,
    StreamReply,
    Wait,
    Write,
    int_header,
)
from ._faults import gzip_bomb as _gzip_bomb
from ._http import (
    MAX_HEAD_BYTES,
    BadRequest,
    ChunkedBody,
    ClientGone,
    Request,
    accepts_gzip,
    drain,
    http_date,
    read_request,
    response_head,
)

log = logging.getLogger("provider_impl.emulator")

#: Server-wide changes of behaviour (``Emulator(drift=...)``, ``--drift``) that stand in
#: for a provider changing its API, so that ``provider-impl drift`` has something to catch.
REQUIRED_PARAM = "safety_identifier"
DRIFTS: dict[str, str] = {
    "usage_renamed": "usage objects say input_tokens instead of prompt_tokens",
    "required_param": f"refuse (400) every request whose body lacks {REQUIRED_PARAM!r}",
    "tool_ids_dropped": "tool calls carry no id",
}


def _drift_json(obj: Any, drifts: frozenset[str]) -> Any:
    """``obj`` (a reply body or one chunk) as a drifted server would send it."""
    if isinstance(obj, list):
        return [_drift_json(v, drifts) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {k: _drift_json(v, drifts) for k, v in obj.items()}
    usage = out.get("usage")
    if "usage_renamed" in drifts and isinstance(usage, dict) and "prompt_tokens" in usage:
        out["usage"] = {
            ("input_tokens" if k == "prompt_tokens" else k): v for k, v in usage.items()
        }
    calls = out.get("tool_calls")
    if "tool_ids_dropped" in drifts and isinstance(calls, list):
        out["tool_calls"] = [
            {k: v for k, v in c.items() if k != "id"} if isinstance(c, dict) else c for c in calls
        ]
    return out


#: Request headers that choose the reply (the faults' own are in ``_faults``).
H_SCENARIO = "x-emulator-scenario"
H_VARIANT = "x-emulator-variant"


def _scenarios() -> Mapping[str, Scenario]:
    # Imported when first needed: provider_impl.scenarios builds its replies from
    # this package's script model, so a module-level import would be circular.
    from provider_impl.scenarios import SCENARIOS

    return SCENARIOS


def _auth_error(dialect: Dialect, ctx: Ctx, req: Request) -> ErrorResponse:
    """Scenario ``error_auth``: the provider's answer to the key sent (or a wrong one)."""
    key = dialect.api_key(req) if dialect.requires_auth else None
    return dialect.auth_error(key if key is not None else "invalid-key", ctx)


def _context_error(dialect: Dialect, ctx: Ctx, req: Request) -> ErrorResponse:
    """Scenario ``error_context_length``: a prompt over the window by 1,000 tokens."""
    n = max(prompt_tokens(ctx.body), dialect.context_window + 1) + 1_000
    return dialect.context_error(n, ctx)


#: A scenario's ``emulated_error`` -> the wire format's error reply.
_EMULATED_ERRORS: dict[str, Callable[[Dialect, Ctx, Request], ErrorResponse]] = {
    "auth": _auth_error,
    "rate_limit": lambda dialect, ctx, req: dialect.rate_limited(2, ctx),
    "context_length": _context_error,
    "invalid_param": lambda dialect, ctx, req: dialect.invalid_param_error(ctx.body, ctx),
    "overloaded": lambda dialect, ctx, req: dialect.overloaded(ctx),
}

_SECRET_HEADERS = frozenset({"authorization", "x-goog-api-key", "api-key", "x-api-key", "cookie"})


class EmulatorStats:
    """Thread-safe counters (incremented on the emulator's loop, read anywhere)."""

    FIELDS = (
        "requests",
        "connections_opened",
        "connections_closed",
        "streams_completed",
        "streams_aborted_by_client",
        "faults_injected",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.connections_opened = 0
        self.connections_closed = 0
        self.streams_completed = 0
        self.streams_aborted_by_client = 0
        self.faults_injected = 0

    def incr(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f: int(getattr(self, f)) for f in self.FIELDS}

    def reset(self) -> None:
        with self._lock:
            for f in self.FIELDS:
                setattr(self, f, 0)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in self.snapshot().items())
        return f"EmulatorStats({inner})"


class _Abort(Exception):
    """The emulator deliberately ended the connection (a fault)."""


class _Refused(Exception):
    """A request fails a check: ``err`` is the reply."""

    def __init__(self, err: ErrorResponse) -> None:
        super().__init__(err.status)
        self.err = err


@dataclass
class _Exchange:
    """One request being answered: its connection, and the renderer and context it reached."""

    req: Request
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    dialect: Dialect
    ctx: Ctx
    #: The path after the provider's prefix; None when no provider has the prefix.
    rest: str | None


@dataclass(frozen=True)
class _Bomb:
    """The ``gzip_bomb`` fault's reply: a status and a gzip body of ``mib`` MiB."""

    status: int
    mib: int
    sse: bool


@dataclass(frozen=True)
class _Reply:
    """A scenario's reply to a valid request, with the fault plan that sends it."""

    scenario: Scenario
    script: ReplyScript
    plan: FaultPlan
    stream: bool


def _plain_error(message: str, code: str | None = None) -> dict[str, Any]:
    """An OpenAI-shaped error body, for a request no provider's renderer answers."""
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    return {"error": error}


def _head(status: int, headers: list[tuple[str, str]], length: int, keep: bool) -> bytes:
    """The status line and ``headers``, closed by content-length and connection."""
    headers.append(("content-length", str(length)))
    headers.append(("connection", "keep-alive" if keep else "close"))
    return response_head(status, headers)


class Emulator:
    """A loopback server answering ``POST <prefix>/chat/completions`` per provider.

    Use it as a context manager (own loop in a daemon thread), or inside a
    running loop with ``await start_async()`` / ``await serve()`` /
    ``await stop_async()``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        backlog: int = 4096,
        keepalive_timeout: float | None = 120.0,
        dialects: Sequence[ProviderDialect] = (),
        drift: Sequence[str] = (),
    ) -> None:
        unknown = [d for d in drift if d not in DRIFTS]
        if unknown:
            raise ValueError(f"unknown drift {unknown[0]!r}; known: {', '.join(DRIFTS)}")
        #: The ``DRIFTS`` applied to every reply (none: the emulator as shipped).
        self.drift = frozenset(drift)
        self.host = host
        # Providers served besides the registered ones (e.g. from a dialect file).
        self._extra_dialects = tuple(dialects)
        for record in self._extra_dialects:
            renderer_for(record)  # an unknown wire format fails here, not per request
        self._renderer_cache: dict[str, tuple[ProviderDialect, Dialect]] = {}
        self._requested_port = port
        self._port = 0
        self._backlog = backlog
        self._keepalive_timeout = keepalive_timeout
        self.stats = EmulatorStats()
        #: The last requests seen (secrets removed), newest last.
        self.recent_requests: deque[dict[str, Any]] = deque(maxlen=200)
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._shut = False
        self._conn_tasks: set[asyncio.Task[Any]] = set()
        self._fault_counts: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        """The port it listens on (known once started)."""
        if not self._port:
            raise RuntimeError("emulator is not listening yet")
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` of the server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def base_url(self, provider: str) -> str:
        """The base URL a client of ``provider`` uses with this server."""
        for renderer in self._renderers():
            if renderer.name == provider:
                return self.url + renderer.prefix
        known = ", ".join(r.name for r in self._renderers())
        raise KeyError(f"unknown provider {provider!r}; known: {known}")

    def _renderers(self) -> list[Dialect]:
        """One renderer per provider known now (the registry can grow: dialect files)."""
        records = {**DIALECTS, **{d.name: d for d in self._extra_dialects}}
        out = []
        for record in records.values():
            cached = self._renderer_cache.get(record.name)
            if cached is None or cached[0] is not record:
                cached = self._renderer_cache[record.name] = (record, renderer_for(record))
            out.append(cached[1])
        return out

    def reset_stats(self) -> None:
        self.stats.reset()

    def reset_faults(self) -> None:
        """Forget how many times each request key has failed (rate_limit etc.)."""
        loop = self._loop
        if loop is not None and loop.is_running() and self._thread is not None:
            loop.call_soon_threadsafe(self._fault_counts.clear)
        else:
            self._fault_counts.clear()

    async def start_async(self) -> Emulator:
        """Listen on the running loop; returns once listening."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._shut = False
        self._server = await asyncio.start_server(
            self._on_connection,
            self.host,
            self._requested_port,
            backlog=self._backlog,
            limit=MAX_HEAD_BYTES,
            reuse_address=True,
        )
        self._port = int(self._server.sockets[0].getsockname()[1])
        log.info("emulator listening on %s", self.url)
        return self

    async def serve(self) -> None:
        """Serve until :meth:`stop`/:meth:`stop_async` (or cancellation)."""
        if self._server is None:
            await self.start_async()
        assert self._stopping is not None
        try:
            await self._stopping.wait()
        finally:
            await self._shutdown()

    async def stop_async(self) -> None:
        """Stop serving and close every connection (on the server's loop)."""
        if self._stopping is not None:
            self._stopping.set()
        await self._shutdown()

    async def _shutdown(self) -> None:
        """Close the listener, cancel the connections' tasks and wait for them."""
        if self._shut or self._server is None:
            return
        self._shut = True
        server = self._server
        server.close()
        tasks = [t for t in self._conn_tasks if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)
        self._server = None

    def start(self) -> Emulator:
        """Start serving on a private loop in a daemon thread; returns once listening."""
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        ready = threading.Event()
        errors: list[BaseException] = []

        async def main() -> None:
            try:
                await self.start_async()
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                return
            ready.set()
            await self.serve()

        def run() -> None:
            asyncio.run(main())

        self._thread = threading.Thread(target=run, name="provider-impl-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            self._thread.join()
            self._thread = None
            raise errors[0]
        return self

    def stop(self) -> None:
        """Stop the server started by :meth:`start` and join its thread."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=15)
        self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Emulator:
        return await self.start_async()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_async()

    # ----------------------------------------------------------- connections
    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one connection, counting it; a failure ends it, never the server."""
        task = asyncio.current_task()
        if task is not None:
            self._conn_tasks.add(task)
        self.stats.incr("connections_opened")
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await self._serve_connection(reader, writer)
        except asyncio.CancelledError:
            pass
        except (_Abort, ClientGone, ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # never let one request take the server down
            log.exception("emulator: unexpected error while serving a connection")
        finally:
            if task is not None:
                self._conn_tasks.discard(task)
            if not writer.transport.is_closing():
                writer.close()
            self.stats.incr("connections_closed")

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Read and answer requests on one connection until either side closes it."""
        while True:
            try:
                if self._keepalive_timeout is None:
                    req = await read_request(reader, writer)
                else:
                    req = await asyncio.wait_for(
                        read_request(reader, writer), self._keepalive_timeout
                    )
            except BadRequest as exc:
                await self._send_bad_http(writer, exc.status, str(exc))
                return
            except asyncio.TimeoutError:
                return
            if req is None:
                return
            self.stats.incr("requests")
            keep = await self._handle(req, reader, writer)
            if not keep or not req.keep_alive:
                return

    async def _send_bad_http(self, writer: asyncio.StreamWriter, status: int, message: str) -> None:
        """Answer bytes that are not HTTP, then close (no provider's words to use)."""
        body = json.dumps(_plain_error(f"Bad HTTP request: {message}")).encode()
        headers = [("date", http_date()), ("content-type", "application/json")]
        with contextlib.suppress(Exception):
            writer.write(_head(status, headers, len(body), False) + body)
            await drain(writer)

    # -------------------------------------------------------------- requests
    def _match(self, path: str) -> tuple[str, Dialect] | None:
        """The provider whose prefix ``path`` is under, and the rest of the path."""
        for renderer in self._renderers():
            prefix = renderer.prefix
            if path == prefix or path.startswith(prefix + "/"):
                return path[len(prefix) :], renderer
        return None

    def _remember(self, req: Request, provider: str, body: Any) -> None:
        """Keep a request (secrets removed) in ``recent_requests``."""
        self.recent_requests.append(
            {
                "provider": provider,
                "method": req.method,
                "path": req.path,
                "headers": {k: v for k, v in req.headers.items() if k not in _SECRET_HEADERS},
                "json": body,
            }
        )

    def _exchange(
        self, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> _Exchange:
        """The renderer ``req`` reached (the first one when no prefix matches) and the
        context its reply is rendered in (ids seeded by provider, scenario and body)."""
        scenario = req.header(H_SCENARIO).strip() or "text"
        matched = self._match(req.path)
        rest, dialect = matched if matched else (None, self._renderers()[0])
        seed = dialect.name.encode() + b"\x00" + scenario.encode() + b"\x00" + req.body
        ctx = Ctx(
            provider=dialect.name,
            ids=IdGen(hashlib.sha256(seed).digest()),
            variant=req.header(H_VARIANT).strip(),
            scenario=scenario,
        )
        return _Exchange(req, reader, writer, dialect, ctx, rest)

    async def _handle(
        self, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; True when the connection may serve another."""
        x = self._exchange(req, reader, writer)
        reply = self._decide(x)
        if isinstance(reply, ErrorResponse):
            return await self._send_error(x, reply)
        if isinstance(reply, _Bomb):
            return await self._send_bomb(x, reply)
        if reply.stream:
            return await self._send_stream(x, reply)
        return await self._send_whole(x, reply)

    def _decide(self, x: _Exchange) -> ErrorResponse | _Bomb | _Reply:
        """What to answer with, no I/O: the error of the first check the request fails
        (route, key, body, control headers, a fault's failing turn), else its reply."""
        try:
            self._check_route(x)
            body = self._read_body(x)
            self._check_body(x, body)
            scenario, fault = self._read_controls(x)
            return self._choose(x, body, scenario, fault)
        except _Refused as refused:
            return refused.err

    def _check_route(self, x: _Exchange) -> None:
        """Refuse a request that no emulated endpoint takes: prefix, path, method, key."""
        req, dialect, ctx = x.req, x.dialect, x.ctx
        if x.rest is None:
            known = ", ".join(r.prefix for r in self._renderers())
            message = f"Unknown path {req.path}: no emulated provider has this prefix"
            err: ErrorResponse | None = ErrorResponse(
                404, _plain_error(f"{message} (known: {known})", "unknown_url")
            )
        elif x.rest.rstrip("/") != "/chat/completions":
            err = dialect.not_found(req.path, ctx)
        elif req.method != "POST":
            err = dialect.method_not_allowed(req.method, req.path, ctx)
        else:
            err = dialect.check_auth(req, ctx)
        if err is not None:
            self._remember(req, "" if x.rest is None else dialect.name, None)
            raise _Refused(err)

    def _read_body(self, x: _Exchange) -> dict[str, Any]:
        """The JSON object the request carries (refused if it is none), remembered."""
        try:
            body = json.loads(x.req.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
        self._remember(x.req, x.dialect.name, body)
        if not isinstance(body, dict):
            raise _Refused(x.dialect.invalid_json(x.ctx))
        x.ctx.body = body
        x.ctx.model = x.dialect.model_name(body.get("model"))
        return body

    def _check_body(self, x: _Exchange, body: dict[str, Any]) -> None:
        """Refuse a body the provider would (fields, values, context window), or that
        the drifted server would (``required_param``)."""
        dialect, ctx = x.dialect, x.ctx
        err = dialect.validate(body, ctx)
        if err is None and "required_param" in self.drift and REQUIRED_PARAM not in body:
            err = dialect.bad_request(f"Missing required parameter: {REQUIRED_PARAM!r}.", ctx)
        if err is not None:
            raise _Refused(err)
        n_tokens = prompt_tokens(body)
        if n_tokens > dialect.context_window:
            raise _Refused(dialect.context_error(n_tokens, ctx))

    def _bad_control(self, x: _Exchange, message: str) -> _Refused:
        """The 400 for a control header the emulator cannot follow."""
        return _Refused(x.dialect.bad_request(message, x.ctx))

    def _read_controls(self, x: _Exchange) -> tuple[Scenario, str]:
        """The scenario and the fault the control headers ask for; a retry fault's
        failing turn is refused here, and a spent one is no fault (``""``)."""
        sc = _scenarios().get(x.ctx.scenario)
        if sc is None:
            known = ", ".join(_scenarios())
            raise self._bad_control(
                x,
                f"Unknown emulator scenario {x.ctx.scenario!r} (header {H_SCENARIO}); "
                f"known scenarios: {known}",
            )
        fault = x.req.header(H_FAULT).strip().lower()
        if fault and fault not in FAULTS:
            raise self._bad_control(
                x,
                f"Unknown emulator fault {fault!r} (header {H_FAULT}); "
                f"known faults: {', '.join(FAULTS)}",
            )
        try:
            retry_after = int_header(x.req, H_RETRY_AFTER, 1)
            fail_times = int_header(x.req, H_FAIL_TIMES, 1)
        except ValueError as exc:
            raise self._bad_control(x, str(exc)) from None
        if fault in RETRY_FAULTS:
            self._count_failure(x, fault, retry_after, fail_times)
            fault = ""
        return sc, fault

    def _count_failure(self, x: _Exchange, fault: str, retry_after: int, fail_times: int) -> None:
        """Refuse the request (429 or 503) while its key has failed fewer than
        ``fail_times`` times in this cycle; let it through and start a new cycle then."""
        req, dialect = x.req, x.dialect
        key = (
            req.header(H_REQUEST_KEY)
            or hashlib.sha256(dialect.name.encode() + req.path.encode() + req.body).hexdigest()
        )
        seen = self._fault_counts.get((fault, key), 0)
        if seen >= fail_times:
            self._fault_counts.pop((fault, key), None)
            return
        self._fault_counts[(fault, key)] = seen + 1
        self.stats.incr("faults_injected")
        if fault == "rate_limit":
            raise _Refused(dialect.rate_limited(retry_after, x.ctx))
        raise _Refused(dialect.unavailable(x.ctx))

    def _choose(
        self, x: _Exchange, body: dict[str, Any], sc: Scenario, fault: str
    ) -> ErrorResponse | _Bomb | _Reply:
        """The reply to a valid request: a bomb, the scenario's error, a 500 for a fault
        or an in-band error a whole reply cannot carry, or the scenario's script."""
        dialect, ctx = x.dialect, x.ctx
        stream = body.get("stream") is True
        if fault == "gzip_bomb":
            return self._bomb(x, stream)
        if sc.emulated_error is not None:
            return _EMULATED_ERRORS[sc.emulated_error](dialect, ctx, x.req)
        script = sc.script_for(body, ctx.variant)
        if not stream and sc.in_band_error_after is not None:
            return dialect.server_error(ctx)  # a whole reply cannot break midway
        if not stream and fault == "error_frame":
            self.stats.incr("faults_injected")
            return dialect.server_error(ctx)
        try:
            plan = FaultPlan.from_headers(x.req, fault, stream)
        except ValueError as exc:
            raise self._bad_control(x, str(exc)) from None
        if fault:
            self.stats.incr("faults_injected")
        return _Reply(sc, script, plan, stream)

    def _bomb(self, x: _Exchange, sse: bool) -> _Bomb:
        """The ``gzip_bomb`` fault's reply, as its control headers size it."""
        try:
            status = int_header(x.req, H_STATUS, 200)
            mib = int_header(x.req, H_BOMB_MIB, 200)
        except ValueError as exc:
            raise self._bad_control(x, str(exc)) from None
        self.stats.incr("faults_injected")
        return _Bomb(status, mib, sse)

    # ------------------------------------------------------------- responses
    def _base_headers(self, x: _Exchange, content_type: str) -> list[tuple[str, str]]:
        """Date, content type and the provider's own headers, which every reply has."""
        headers = [("date", http_date()), ("content-type", content_type)]
        headers.extend(x.dialect.response_headers(x.ctx))
        return headers

    def _gzip(self, x: _Exchange) -> bool:
        """Whether the reply is gzip-encoded (a provider that does, a client that asks)."""
        return x.dialect.gzip and accepts_gzip(x.req.headers)

    async def _send_error(self, x: _Exchange, err: ErrorResponse) -> bool:
        """Send an error reply whole; True when the connection may serve another."""
        dialect = x.dialect
        body = dialect.dumps(err.body).encode("utf-8")
        headers = self._base_headers(x, dialect.json_content_type)
        headers.extend(err.headers)
        if self._gzip(x):
            body = gzip.compress(body, mtime=0)
            headers.append(("content-encoding", "gzip"))
        keep = x.req.keep_alive
        x.writer.write(_head(err.status, headers, len(body), keep) + body)
        await drain(x.writer)
        log.debug("%s %s -> %d", x.req.method, x.req.path, err.status)
        return keep

    async def _send_bomb(self, x: _Exchange, bomb: _Bomb) -> bool:
        """Send the gzip bomb, then close."""
        body = _gzip_bomb(bomb.mib)
        dialect = x.dialect
        content_type = dialect.sse_content_type if bomb.sse else dialect.json_content_type
        headers = self._base_headers(x, content_type)
        headers.append(("content-encoding", "gzip"))
        x.writer.write(_head(bomb.status, headers, len(body), False) + body)
        await drain(x.writer)
        return False

    def _render_whole(self, x: _Exchange, reply: _Reply) -> tuple[bytes, bytes, bool]:
        """A whole reply's head and body (the keep-alive fault's pad first), and
        whether the connection may serve another request."""
        dialect, ctx, pad = x.dialect, x.ctx, reply.plan.pad
        obj = dialect.completion(reply.script, ctx)
        if self.drift:
            obj = _drift_json(obj, self.drift)
        body = dialect.dumps(obj, ctx).encode("utf-8")
        headers = self._base_headers(x, dialect.json_content_type)
        if self._gzip(x) and not pad:
            body = gzip.compress(body, mtime=0)
            headers.append(("content-encoding", "gzip"))
        body = pad + body
        keep = x.req.keep_alive and reply.plan.keeps_alive(stream=False)
        return _head(200, headers, len(body), keep), body, keep

    async def _send_whole(self, x: _Exchange, reply: _Reply) -> bool:
        """Send a whole reply as its fault plan lays it out."""
        head, body, keep = self._render_whole(x, reply)
        await self._play(
            reply.plan.whole_steps(head, body), x, ChunkedBody(x.writer, x.reader, False)
        )
        log.debug("%s %s -> 200 (%s)", x.req.method, x.req.path, x.ctx.scenario)
        return keep

    def _render_stream(self, x: _Exchange, reply: _Reply) -> tuple[bytes, StreamReply, bool]:
        """A streamed reply's head (chunked, no length) and its frames, and whether
        the connection may serve another request."""
        dialect, ctx = x.dialect, x.ctx
        headers = self._base_headers(x, dialect.sse_content_type)
        headers.append(("cache-control", "no-cache"))
        if self._gzip(x):
            headers.append(("content-encoding", "gzip"))
        headers.append(("transfer-encoding", "chunked"))
        keep = x.req.keep_alive and reply.plan.keeps_alive(stream=True)
        headers.append(("connection", "keep-alive" if keep else "close"))
        frames = StreamReply(
            frames=self._drifted(dialect.stream(reply.script, ctx), dialect, ctx),
            error_at=reply.scenario.in_band_error_after,
            split_utf8=reply.scenario.split_utf8,
            in_band_error=lambda: b"".join(
                f.raw for f in self._drifted(dialect.in_band_error(ctx), dialect, ctx)
            ),
        )
        return response_head(200, headers), frames, keep

    async def _send_stream(self, x: _Exchange, reply: _Reply) -> bool:
        """Send a streamed reply as its fault plan lays it out; count how it ended."""
        head, frames, keep = self._render_stream(x, reply)
        out = ChunkedBody(x.writer, x.reader, self._gzip(x))
        req, scenario = x.req, x.ctx.scenario
        try:
            await self._play(reply.plan.stream_steps(head, frames), x, out)
        except ClientGone:
            self.stats.incr("streams_aborted_by_client")
            log.debug("%s %s: client went away mid-stream (%s)", req.method, req.path, scenario)
            raise
        self.stats.incr("streams_completed")
        log.debug("%s %s -> 200 stream (%s)", req.method, req.path, scenario)
        return keep

    def _drifted(self, frames: list[Frame], dialect: Dialect, ctx: Ctx) -> list[Frame]:
        """``frames`` as the drifted server sends them (``self.drift``)."""
        if not self.drift:
            return frames
        return [
            dialect.data(_drift_json(json.loads(f.raw.removeprefix(b"data: ")), self.drift), ctx)
            if f.kind == "data"
            else f
            for f in frames
        ]

    # ----------------------------------------------------------------- steps
    async def _play(self, steps: Iterable[Step], x: _Exchange, out: ChunkedBody) -> None:
        """Carry out a reply's steps: the one loop that puts every reply on the wire,
        faults included (``out`` carries a chunked body's steps)."""
        for step in steps:
            if isinstance(step, Send):
                if step.pace is None:
                    await out.send(step.data)
                else:
                    await self._dribble(step.data, step.pace, x, out.send)
            elif isinstance(step, Write):
                if step.pace is None:
                    x.writer.write(step.data)
                    await drain(x.writer)
                else:
                    await self._dribble(step.data, step.pace, x, self._write_to(x))
            elif isinstance(step, Finish):
                await out.finish(step.tail)
            elif isinstance(step, Wait):
                await self._sleep_watch(step.seconds, x)
            elif isinstance(step, KeepAlive):
                await self._keepalive(out, step, x)
            elif isinstance(step, Reset):
                await self._reset(x.writer)
            else:  # Abort
                raise _Abort()

    @staticmethod
    def _write_to(x: _Exchange) -> Callable[[bytes], Awaitable[None]]:
        """Write-and-drain on the raw socket, as one awaitable call."""

        async def write(data: bytes) -> None:
            x.writer.write(data)
            await drain(x.writer)

        return write

    async def _sleep_watch(self, seconds: float, x: _Exchange) -> None:
        """Sleep, but notice a client that goes away meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            if x.writer.transport.is_closing() or x.reader.at_eof():
                raise ClientGone()
            left = deadline - loop.time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.05))

    async def _dribble(
        self,
        data: bytes,
        seconds: float,
        x: _Exchange,
        send: Callable[[bytes], Awaitable[None]],
    ) -> None:
        """Send ``data`` one byte at a time, each followed by ``seconds`` of nothing."""
        for i in range(len(data)):
            await send(data[i : i + 1])
            await self._sleep_watch(seconds, x)

    async def _keepalive(self, out: ChunkedBody, step: KeepAlive, x: _Exchange) -> None:
        """SSE comments only, every ``step.every`` seconds for ``step.seconds``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + step.seconds
        while loop.time() < end:
            await out.send(b": keep-alive\n\n")
            await self._sleep_watch(step.every, x)

    async def _reset(self, writer: asyncio.StreamWriter) -> None:
        """Abort the connection with a TCP reset, after flushing what was written."""
        transport = writer.transport
        for _ in range(200):
            if transport.get_write_buffer_size() == 0:
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.02)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        raise _Abort()
