"""The emulator server: one asyncio loop, HTTP/1.1 keep-alive, scenarios and faults."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import hashlib
import json
import logging
import socket
import struct
import threading
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from provider_impl.dialects import DIALECTS, ProviderDialect

if TYPE_CHECKING:
    from provider_impl.scenarios import Scenario

from provider_impl.reply_script import Script, prompt_tokens

from ._dialects import (
    Ctx,
    Dialect,
    ErrorResponse,
    Frame,
    IdGen,
    renderer_for,
)
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

FAULTS: dict[str, str] = {
    "reset": "send x-emulator-fault-after frames (default 2), then reset the TCP connection",
    "stall": "after x-emulator-fault-after frames (default 0: before the headers), send "
    "nothing for x-emulator-stall-seconds (default 30)",
    "truncate": "send the frames, then half of the last JSON frame, then end the body cleanly "
    "(no terminator, no [DONE])",
    "error_frame": "an in-band error (as in scenario error_in_stream) at frame "
    "x-emulator-fault-after (default 2)",
    "rate_limit": "429 with Retry-After: x-emulator-retry-after (default 1) for the first "
    "x-emulator-fail-times (default 1) requests with the same x-emulator-request-key (default: "
    "a hash of the body), then the normal response; after that success the cycle restarts",
    "unavailable_then_ok": "503 for the first x-emulator-fail-times (default 1) requests with "
    "the same x-emulator-request-key (default: a hash of the body), then the normal response",
    "trickle": "wait x-emulator-trickle-ms (default 50) between frames",
    "keepalive": "after x-emulator-fault-after data frames (default 0), send only keep-alives "
    "for x-emulator-stall-seconds (default 30): an SSE comment, or a space before a whole "
    "JSON reply, every x-emulator-trickle-ms (default 300); then the rest",
    "trickle_head": "send the status line and headers one byte every x-emulator-trickle-ms "
    "(default 300), then the body",
    "trickle_bytes": "send the body (every frame, or the whole reply) one byte every "
    "x-emulator-trickle-ms (default 300)",
    "gzip_bomb": "answer with status x-emulator-status (default 200) and a gzip body that "
    "inflates to x-emulator-bomb-mib (default 200) MiB of spaces",
}
#: Faults whose x-emulator-trickle-ms defaults to 300 (a proxy's keep-alive pace).
_SLOW_FAULTS = frozenset({"keepalive", "trickle_head", "trickle_bytes"})

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


#: Request headers that steer the emulator.
H_SCENARIO = "x-emulator-scenario"
H_VARIANT = "x-emulator-variant"
H_FAULT = "x-emulator-fault"
H_FAULT_AFTER = "x-emulator-fault-after"
H_STALL_SECONDS = "x-emulator-stall-seconds"
H_RETRY_AFTER = "x-emulator-retry-after"
H_FAIL_TIMES = "x-emulator-fail-times"
H_REQUEST_KEY = "x-emulator-request-key"
H_TRICKLE_MS = "x-emulator-trickle-ms"
H_STATUS = "x-emulator-status"
H_BOMB_MIB = "x-emulator-bomb-mib"


def _scenarios() -> Mapping[str, Scenario]:
    # Imported when first needed: provider_impl.scenarios builds its replies from
    # this package's script model, so a module-level import would be circular.
    from provider_impl.scenarios import SCENARIOS

    return SCENARIOS


def _auth_error(dialect: Dialect, ctx: Ctx, req: Request) -> ErrorResponse:
    key = dialect.api_key(req) if dialect.requires_auth else None
    return dialect.auth_error(key if key is not None else "invalid-key", ctx)


def _context_error(dialect: Dialect, ctx: Ctx, req: Request) -> ErrorResponse:
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


_N = TypeVar("_N", int, float)


def _number_header(req: Request, name: str, default: _N, kind: Callable[[str], _N]) -> _N:
    """A non-negative number from a control header, or ``default`` when absent."""
    raw = req.header(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ValueError(f"header {name} must be a {kind.__name__}, got {raw!r}") from exc
    if value < 0:
        raise ValueError(f"header {name} must not be negative")
    return value


def _int_header(req: Request, name: str, default: int) -> int:
    return _number_header(req, name, default, int)


def _float_header(req: Request, name: str, default: float) -> float:
    return _number_header(req, name, default, float)


def _trickle_seconds(req: Request, fault: str) -> float:
    return _float_header(req, H_TRICKLE_MS, 300.0 if fault in _SLOW_FAULTS else 50.0) / 1000


@functools.lru_cache(maxsize=4)
def _gzip_bomb(mib: int) -> bytes:
    """gzip of ``mib`` MiB of spaces, built a block at a time (about 1 KiB per MiB)."""
    squash = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * (1 << 20)
    parts = [squash.compress(block) for _ in range(mib)]
    parts.append(squash.flush())
    return b"".join(parts)


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
        if not self._port:
            raise RuntimeError("emulator is not listening yet")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def base_url(self, provider: str) -> str:
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
        if self._stopping is not None:
            self._stopping.set()
        await self._shutdown()

    async def _shutdown(self) -> None:
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
        body = json.dumps(
            {
                "error": {
                    "message": f"Bad HTTP request: {message}",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            }
        ).encode()
        head = response_head(
            status,
            [
                ("date", http_date()),
                ("content-type", "application/json"),
                ("content-length", str(len(body))),
                ("connection", "close"),
            ],
        )
        with contextlib.suppress(Exception):
            writer.write(head + body)
            await drain(writer)

    # -------------------------------------------------------------- requests
    def _match(self, path: str) -> tuple[str, Dialect] | None:
        for renderer in self._renderers():
            prefix = renderer.prefix
            if path == prefix or path.startswith(prefix + "/"):
                return path[len(prefix) :], renderer
        return None

    def _remember(self, req: Request, provider: str, body: Any) -> None:
        self.recent_requests.append(
            {
                "provider": provider,
                "method": req.method,
                "path": req.path,
                "headers": {k: v for k, v in req.headers.items() if k not in _SECRET_HEADERS},
                "json": body,
            }
        )

    async def _handle(
        self, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        scenario = req.header(H_SCENARIO).strip() or "text"
        matched = self._match(req.path)
        seed_dialect = matched[1] if matched else self._renderers()[0]
        ctx = Ctx(
            provider=seed_dialect.name,
            ids=IdGen(
                hashlib.sha256(
                    seed_dialect.name.encode() + b"\x00" + scenario.encode() + b"\x00" + req.body
                ).digest()
            ),
            variant=req.header(H_VARIANT).strip(),
            scenario=scenario,
        )
        if matched is None:
            self._remember(req, "", None)
            err = ErrorResponse(
                404,
                {
                    "error": {
                        "message": f"Unknown path {req.path}: no emulated provider has this "
                        f"prefix (known: {', '.join(r.prefix for r in self._renderers())})",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "unknown_url",
                    }
                },
            )
            return await self._send_error(req, writer, seed_dialect, ctx, err)
        rest, dialect = matched

        # 1. Path and method.
        if rest.rstrip("/") != "/chat/completions":
            self._remember(req, dialect.name, None)
            return await self._send_error(
                req, writer, dialect, ctx, dialect.not_found(req.path, ctx)
            )
        if req.method != "POST":
            self._remember(req, dialect.name, None)
            err = dialect.method_not_allowed(req.method, req.path, ctx)
            return await self._send_error(req, writer, dialect, ctx, err)

        # 2. Auth.
        err_or_none = dialect.check_auth(req, ctx)
        if err_or_none is not None:
            self._remember(req, dialect.name, None)
            return await self._send_error(req, writer, dialect, ctx, err_or_none)

        # 3. Body.
        try:
            body = json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
        self._remember(req, dialect.name, body)
        if not isinstance(body, dict):
            return await self._send_error(req, writer, dialect, ctx, dialect.invalid_json(ctx))
        ctx.body = body
        model = body.get("model")
        ctx.model = dialect.model_name(model)
        err_or_none = dialect.validate(body, ctx)
        if err_or_none is None and "required_param" in self.drift and REQUIRED_PARAM not in body:
            err_or_none = dialect.bad_request(
                f"Missing required parameter: {REQUIRED_PARAM!r}.", ctx
            )
        if err_or_none is not None:
            return await self._send_error(req, writer, dialect, ctx, err_or_none)

        # 4. Context window.
        n_tokens = prompt_tokens(body)
        if n_tokens > dialect.context_window:
            return await self._send_error(
                req, writer, dialect, ctx, dialect.context_error(n_tokens, ctx)
            )

        # 5. Scenario and faults.
        sc = _scenarios().get(scenario)
        if sc is None:
            msg = (
                f"Unknown emulator scenario {scenario!r} (header {H_SCENARIO}); "
                f"known scenarios: {', '.join(_scenarios())}"
            )
            return await self._send_error(req, writer, dialect, ctx, dialect.bad_request(msg, ctx))
        fault = req.header(H_FAULT).strip().lower()
        if fault and fault not in FAULTS:
            msg = (
                f"Unknown emulator fault {fault!r} (header {H_FAULT}); "
                f"known faults: {', '.join(FAULTS)}"
            )
            return await self._send_error(req, writer, dialect, ctx, dialect.bad_request(msg, ctx))
        try:
            retry_after = _int_header(req, H_RETRY_AFTER, 1)
            fail_times = _int_header(req, H_FAIL_TIMES, 1)
        except ValueError as exc:
            return await self._send_error(
                req, writer, dialect, ctx, dialect.bad_request(str(exc), ctx)
            )

        if fault in ("rate_limit", "unavailable_then_ok"):
            key = (
                req.header(H_REQUEST_KEY)
                or hashlib.sha256(dialect.name.encode() + req.path.encode() + req.body).hexdigest()
            )
            seen = self._fault_counts.get((fault, key), 0)
            if seen >= fail_times:
                # This request succeeds; the next one with the key starts a new cycle.
                self._fault_counts.pop((fault, key), None)
            else:
                self._fault_counts[(fault, key)] = seen + 1
                self.stats.incr("faults_injected")
                if fault == "rate_limit":
                    err = dialect.rate_limited(retry_after, ctx)
                else:
                    err = dialect.unavailable(ctx)
                return await self._send_error(req, writer, dialect, ctx, err)
            fault = ""

        if fault == "gzip_bomb":
            return await self._send_bomb(req, writer, dialect, ctx, body.get("stream") is True)

        if sc.emulated_error is not None:
            err = _EMULATED_ERRORS[sc.emulated_error](dialect, ctx, req)
            return await self._send_error(req, writer, dialect, ctx, err)

        script = sc.script_for(body, ctx.variant)
        if body.get("stream") is True:
            return await self._send_stream(req, reader, writer, dialect, ctx, script, fault)
        if sc.in_band_error_after is not None:
            # A whole reply cannot break midway: the same failure is a 500.
            return await self._send_error(req, writer, dialect, ctx, dialect.server_error(ctx))
        return await self._send_completion(req, reader, writer, dialect, ctx, script, fault)

    # ------------------------------------------------------------- responses
    def _base_headers(
        self, req: Request, dialect: Dialect, ctx: Ctx, content_type: str
    ) -> list[tuple[str, str]]:
        headers = [("date", http_date()), ("content-type", content_type)]
        headers.extend(dialect.response_headers(ctx))
        return headers

    def _gzip(self, req: Request, dialect: Dialect) -> bool:
        return dialect.gzip and accepts_gzip(req.headers)

    async def _send_error(
        self,
        req: Request,
        writer: asyncio.StreamWriter,
        dialect: Dialect,
        ctx: Ctx,
        err: ErrorResponse,
    ) -> bool:
        body = dialect.dumps(err.body).encode("utf-8")
        headers = self._base_headers(req, dialect, ctx, dialect.json_content_type)
        headers.extend(err.headers)
        if self._gzip(req, dialect):
            body = gzip.compress(body, mtime=0)
            headers.append(("content-encoding", "gzip"))
        keep = req.keep_alive
        headers.append(("content-length", str(len(body))))
        headers.append(("connection", "keep-alive" if keep else "close"))
        writer.write(response_head(err.status, headers) + body)
        await drain(writer)
        log.debug("%s %s -> %d", req.method, req.path, err.status)
        return keep

    async def _sleep_watch(
        self, seconds: float, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Sleep, but notice a client that goes away meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            if writer.transport.is_closing() or reader.at_eof():
                raise ClientGone()
            left = deadline - loop.time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.05))

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

    async def _dribble(
        self,
        data: bytes,
        seconds: float,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        out: ChunkedBody | None = None,
    ) -> None:
        """Write ``data`` one byte at a time, ``seconds`` apart (as HTTP chunks with ``out``)."""
        for i in range(len(data)):
            if out is not None:
                await out.send(data[i : i + 1])
            else:
                writer.write(data[i : i + 1])
                await drain(writer)
            await self._sleep_watch(seconds, reader, writer)

    async def _keepalive(
        self,
        out: ChunkedBody,
        seconds: float,
        every: float,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """SSE comments only, every ``every`` seconds for ``seconds``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            await out.send(b": keep-alive\n\n")
            await self._sleep_watch(every, reader, writer)

    async def _send_bomb(
        self, req: Request, writer: asyncio.StreamWriter, dialect: Dialect, ctx: Ctx, sse: bool
    ) -> bool:
        try:
            status = _int_header(req, H_STATUS, 200)
            mib = _int_header(req, H_BOMB_MIB, 200)
        except ValueError as exc:
            return await self._send_error(
                req, writer, dialect, ctx, dialect.bad_request(str(exc), ctx)
            )
        self.stats.incr("faults_injected")
        body = _gzip_bomb(mib)
        content_type = dialect.sse_content_type if sse else dialect.json_content_type
        headers = self._base_headers(req, dialect, ctx, content_type)
        headers.append(("content-encoding", "gzip"))
        headers.append(("content-length", str(len(body))))
        headers.append(("connection", "close"))
        writer.write(response_head(status, headers) + body)
        await drain(writer)
        return False

    async def _send_completion(
        self,
        req: Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        dialect: Dialect,
        ctx: Ctx,
        script: Script,
        fault: str,
    ) -> bool:
        if fault == "error_frame":
            self.stats.incr("faults_injected")
            return await self._send_error(req, writer, dialect, ctx, dialect.server_error(ctx))
        try:
            stall = _float_header(req, H_STALL_SECONDS, 30.0)
            after = _int_header(req, H_FAULT_AFTER, 0)
            trickle = _trickle_seconds(req, fault)
        except ValueError as exc:
            return await self._send_error(
                req, writer, dialect, ctx, dialect.bad_request(str(exc), ctx)
            )
        reply = dialect.completion(script, ctx)
        if self.drift:
            reply = _drift_json(reply, self.drift)
        body = dialect.dumps(reply, ctx).encode("utf-8")
        headers = self._base_headers(req, dialect, ctx, dialect.json_content_type)
        pad = b" " * int(stall / trickle) if fault == "keepalive" and trickle > 0 else b""
        if self._gzip(req, dialect) and not pad:
            body = gzip.compress(body, mtime=0)
            headers.append(("content-encoding", "gzip"))
        body = pad + body  # JSON may start with whitespace: what a proxy sends meanwhile
        keep = req.keep_alive and not fault
        headers.append(("content-length", str(len(body))))
        headers.append(("connection", "keep-alive" if keep else "close"))
        head = response_head(200, headers)
        if fault:
            self.stats.incr("faults_injected")
        if fault == "stall":
            await self._sleep_watch(stall, reader, writer)
        elif fault == "trickle":
            await self._sleep_watch(trickle, reader, writer)
        elif fault == "trickle_head":
            await self._dribble(head, trickle, reader, writer)
            head = b""
        elif fault in ("trickle_bytes", "keepalive"):
            writer.write(head)
            await drain(writer)
            await self._dribble(body[: len(pad)] if pad else body, trickle, reader, writer)
            head, body = b"", body[len(pad) :] if pad else b""
        elif fault == "reset":
            if after > 0:
                writer.write(head + body[: len(body) // 2])
                await drain(writer)
            await self._reset(writer)
        elif fault == "truncate":
            writer.write(head + body[: len(body) // 2])
            await drain(writer)
            raise _Abort()
        writer.write(head + body)
        await drain(writer)
        log.debug("%s %s -> 200 (%s)", req.method, req.path, ctx.scenario)
        return keep

    async def _send_stream(
        self,
        req: Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        dialect: Dialect,
        ctx: Ctx,
        script: Script,
        fault: str,
    ) -> bool:
        frames = self._drifted(dialect.stream(script, ctx), dialect, ctx)
        sc = _scenarios()[ctx.scenario]
        error_at = sc.in_band_error_after
        try:
            default_after = {"reset": 2, "error_frame": 2}.get(fault, 0)
            after = _int_header(req, H_FAULT_AFTER, default_after)
            stall = _float_header(req, H_STALL_SECONDS, 30.0)
            every = _trickle_seconds(req, fault)
            trickle = every if fault == "trickle" else 0.0
        except ValueError as exc:
            return await self._send_error(
                req, writer, dialect, ctx, dialect.bad_request(str(exc), ctx)
            )
        if fault == "error_frame":
            error_at = after
        data_positions = [i for i, f in enumerate(frames) if f.kind != "comment"]
        truncate_at: int | None = None
        if fault == "truncate":
            json_positions = [i for i, f in enumerate(frames) if f.kind == "data"]
            if req.header(H_FAULT_AFTER):
                truncate_at = data_positions[min(after, len(data_positions) - 1)]
            else:
                truncate_at = json_positions[-1]
        if fault:
            self.stats.incr("faults_injected")

        use_gzip = self._gzip(req, dialect)
        headers = self._base_headers(req, dialect, ctx, dialect.sse_content_type)
        headers.append(("cache-control", "no-cache"))
        if use_gzip:
            headers.append(("content-encoding", "gzip"))
        headers.append(("transfer-encoding", "chunked"))
        keep = req.keep_alive and fault not in ("reset", "truncate")
        headers.append(("connection", "keep-alive" if keep else "close"))

        out = ChunkedBody(writer, reader, use_gzip)
        try:
            if fault == "stall" and after == 0:
                await self._sleep_watch(stall, reader, writer)
            if fault == "trickle_head":
                await self._dribble(response_head(200, headers), every, reader, writer)
            else:
                writer.write(response_head(200, headers))
                await drain(writer)
            if fault == "trickle_bytes":
                await self._dribble(b"".join(f.raw for f in frames), every, reader, writer, out)
                frames = []
            sent = 0
            for i, frame in enumerate(frames):
                if frame.kind != "comment":
                    if fault == "keepalive" and sent == after:
                        await self._keepalive(out, stall, every, reader, writer)
                    if fault == "reset" and sent == after:
                        await self._reset(writer)
                    if fault == "stall" and after > 0 and sent == after:
                        await self._sleep_watch(stall, reader, writer)
                    if error_at is not None and sent == error_at:
                        error = self._drifted(dialect.in_band_error(ctx), dialect, ctx)
                        await out.finish(b"".join(f.raw for f in error))
                        self.stats.incr("streams_completed")
                        return keep
                if truncate_at is not None and i == truncate_at:
                    await out.send(frame.raw[: len(frame.raw) // 2])
                    await out.finish()
                    raise _Abort()
                if i == len(frames) - 1 and fault != "reset":
                    await out.finish(frame.raw)
                    break
                await self._send_frame(out, frame, sc.split_utf8)
                if frame.kind != "comment":
                    sent += 1
                if trickle and i < len(frames) - 1:
                    await self._sleep_watch(trickle, reader, writer)
            else:
                if fault == "reset":  # asked to reset after the last frame
                    await self._reset(writer)
                await out.finish()
        except ClientGone:
            self.stats.incr("streams_aborted_by_client")
            log.debug("%s %s: client went away mid-stream (%s)", req.method, req.path, ctx.scenario)
            raise
        self.stats.incr("streams_completed")
        log.debug("%s %s -> 200 stream (%s)", req.method, req.path, ctx.scenario)
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

    @staticmethod
    async def _send_frame(out: ChunkedBody, frame: Frame, split_utf8: bool) -> None:
        raw = frame.raw
        if split_utf8:
            # Split the HTTP chunk inside a multi-byte UTF-8 character.
            for pos, byte in enumerate(raw):
                if byte >= 0xC0:
                    await out.send(raw[: pos + 1])
                    await out.send(raw[pos + 1 :])
                    return
        await out.send(raw)
