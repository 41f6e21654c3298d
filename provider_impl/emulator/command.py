"""``python -m provider_impl.emulator`` (and ``provider-impl emulator``): serve the
emulator until interrupted. Apart from the server so that the server never
imports the dialect-file loader, which reads the emulator's wire names."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence

from provider_impl.dialect_file import DialectFileError, load_dialect_file
from provider_impl.dialects import DIALECTS

from ._server import DRIFTS, Emulator

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m provider_impl.emulator --host H --port N``: serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="provider-impl emulator",
        description="Serve emulated chat-completions endpoints for every provider on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: any free one)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request")
    parser.add_argument(
        "--dialect-file",
        action="append",
        default=[],
        metavar="FILE",
        help="also serve the provider of this dialect record (repeatable)",
    )
    parser.add_argument(
        "--drift",
        action="append",
        default=[],
        choices=list(DRIFTS),
        help="behave like a provider whose API changed (repeatable): "
        + "; ".join(f"{k}: {v}" for k, v in DRIFTS.items()),
    )
    args = parser.parse_args(list(argv) if argv is not None else sys.argv[1:])
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")
    try:
        for path in args.dialect_file:
            load_dialect_file(path)
        emulator = Emulator(args.host, args.port, drift=args.drift)
        emulator._renderers()  # an unknown wire format is reported before serving
    except (DialectFileError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    async def run() -> None:
        await emulator.start_async()
        print(emulator.url)
        for name in DIALECTS:
            print(f"  {name}: {emulator.base_url(name)}")
        sys.stdout.flush()
        await emulator.serve()

    if not 0 <= args.port <= 65535:
        print(
            f"error: port {args.port} is out of range (0-65535; 0: any free one)", file=sys.stderr
        )
        return 2
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    except OSError as err:  # the port in use, an address not on this machine, a bad name
        print(
            f"error: cannot serve on {args.host}:{args.port}: {err.strerror or err}",
            file=sys.stderr,
        )
        return 2
    return 0
