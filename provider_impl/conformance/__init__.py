"""The conformance suite, shipped in the package.

Run it with ``provider-impl conformance`` (a matrix, exit code 1 on failure) or
as plain pytest: ``pytest --pyargs provider_impl.conformance``. It replays the
cassettes under ``--provider-cassettes DIR`` (default: the shipped ones) and
compares each outcome with the reviewed snapshots stored beside them, in
``DIR/__snapshots__``. Importing this package imports neither pytest nor the
``conformance`` extra: the CLI reads the paths below before checking for it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SNAPSHOT_DIRNAME", "SUITE", "shipped_cassettes", "snapshot_dir"]

SUITE = Path(__file__).resolve().parent
SNAPSHOT_DIRNAME = "__snapshots__"


def shipped_cassettes() -> Path:
    """The cassettes that come with the package: inside it when installed from a
    wheel (``provider_impl/cassettes``), beside it in a source checkout."""
    inside = SUITE.parent / "cassettes"
    return inside if inside.is_dir() else SUITE.parent.parent / "cassettes"


def snapshot_dir(cassette_dir: Path) -> Path:
    """Where the reviewed snapshots of ``cassette_dir``'s cassettes live."""
    return Path(cassette_dir) / SNAPSHOT_DIRNAME
