"""The real Claude subscription proxy (claude-max-api-proxy) for tests, with a stand-in CLI.

``install_proxy()`` installs the pinned npm package once into a cache folder
(``$PROVIDER_IMPL_CACHE`` or ``~/.cache/provider-impl``) with npm's own client
and its configured registry; ``ClaudeProxy`` starts it on a free loopback port
with ``tests/fake_claude_cli.py`` first on ``PATH`` as ``claude``, and counts
the CLI runs through the stand-in's log.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

PACKAGE = "claude-max-api-proxy"
VERSION = "1.0.0"
HERE = Path(__file__).resolve().parent
STAND_IN = HERE / "fake_claude_cli.py"


class ProxyUnavailable(RuntimeError):
    """The proxy could not be installed or started (no npm, no registry, no node)."""


def cache_dir() -> Path:
    root = os.environ.get("PROVIDER_IMPL_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "provider-impl"
    )
    return Path(root) / "claude-proxy" / VERSION


def install_proxy(timeout: float = 180.0) -> Path:
    """The proxy's entry script, installed on first use (a lock keeps parallel runs apart)."""
    prefix = cache_dir()
    entry = prefix / "node_modules" / PACKAGE / "dist" / "server" / "standalone.js"
    if entry.is_file():
        return entry
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        raise ProxyUnavailable("node and npm are needed to run claude-max-api-proxy")
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if entry.is_file():
            return entry
        cmd = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund"]
        cmd += ["--no-save", "--loglevel=error", f"{PACKAGE}@{VERSION}"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ProxyUnavailable(f"npm install {PACKAGE}@{VERSION} timed out") from None
        if done.returncode != 0 or not entry.is_file():
            tail = (done.stderr or done.stdout).strip()[-600:]
            raise ProxyUnavailable(f"npm install {PACKAGE}@{VERSION} failed: {tail}")
    return entry


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ClaudeProxy:
    """A running proxy. ``base_url`` is its ``/v1``; ``runs()`` lists the CLI runs so far."""

    def __init__(self, entry: Path, workdir: Path) -> None:
        self.workdir = workdir
        bindir = workdir / "bin"
        bindir.mkdir(parents=True, exist_ok=True)
        launcher = bindir / "claude"
        launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STAND_IN}" "$@"\n')
        launcher.chmod(0o755)
        self.log = workdir / "cli-runs.jsonl"
        self.log.touch()
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        env = dict(os.environ)
        env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
        env["FAKE_CLAUDE_LOG"] = str(self.log)
        self._output = open(workdir / "proxy.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [shutil.which("node") or "node", str(entry), str(self.port)],
            cwd=workdir,
            env=env,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ProxyUnavailable(f"the proxy exited at start: {self.output()[-600:]}")
            url = f"http://127.0.0.1:{self.port}/health"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1):
                return
            time.sleep(0.05)
        raise ProxyUnavailable(f"the proxy did not answer within {timeout} s: {self.output()}")

    def output(self) -> str:
        self._output.flush()
        return (self.workdir / "proxy.log").read_text(errors="replace")

    def runs(self) -> list[dict[str, Any]]:
        """Every CLI run so far (argv without the prompt, model alias, prompt bytes)."""
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._output.close()
