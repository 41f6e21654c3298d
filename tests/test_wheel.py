"""The main job from the wheel: built, unpacked outside the checkout, and run in an
empty folder over the shipped cassettes, then over a user's folder of cassettes
with its snapshots beside them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatchling", reason="the dev extra builds the wheel offline with hatchling")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"),
            *("-w", str(out), str(ROOT)),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("provider_impl-*.whl")
    return built


@pytest.fixture(scope="module")
def site(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel's files, as an installer lays them out (no checkout in sight)."""
    target = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(target)
    return target


def _cli(site: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    # The wheel's package first on the path; its dependencies from this environment.
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "provider_impl.cli", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_wheel_carries_the_suite_the_cassettes_and_the_plugin(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "[pytest11]" in z.read(entry_points).decode()
    assert "provider_impl/conformance/conftest.py" in names
    assert "provider_impl/cassettes/mistral/tool_call.yaml" in names
    assert "provider_impl/cassettes/__snapshots__/test_real_traffic.ambr" in names
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "cassettes").rglob("*.yaml")}
    assert {f"provider_impl/{p}" for p in shipped} <= names


def test_the_main_job_runs_from_the_wheel_in_an_empty_folder(site: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _cli(site, empty, "conformance", "--provider", "mistral", "--provider", "glm")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "0 failed" in proc.stdout and "Traceback" not in proc.stderr
    assert list(empty.iterdir()) == []  # nothing written where it ran


def test_over_a_users_folder_the_snapshots_live_beside_the_cassettes(
    site: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "mine"
    shutil.copytree(site / "provider_impl" / "cassettes" / "glm", mine / "glm")
    first = _cli(site, tmp_path, "conformance", "--cassette-dir", "mine")
    assert first.returncode == 2 and "--snapshot-update" in first.stderr
    created = _cli(
        site, tmp_path, "conformance", "--cassette-dir", "mine", "--", "--snapshot-update"
    )
    assert created.returncode == 0, created.stdout[-3000:] + created.stderr
    snapshots = _snapshot_names(mine / "__snapshots__" / "test_conformance.ambr")
    assert snapshots and all("[glm-" in name for name in snapshots)
    shipped = site / "provider_impl" / "cassettes" / "__snapshots__" / "test_conformance.ambr"
    before = shipped.read_bytes()
    checked = _cli(site, tmp_path, "conformance", "--cassette-dir", "mine")
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr
    assert "0 failed" in checked.stdout
    # The shipped snapshots were neither read for nor written by the user's run.
    assert shipped.read_bytes() == before
    assert len([n for n in _snapshot_names(shipped) if "[glm-" in n]) == len(snapshots)


def _snapshot_names(path: Path) -> list[str]:
    """The names of the snapshots in one amber file."""
    from syrupy.extensions.amber.serializer import AmberDataSerializer

    return [snapshot.name for snapshot in AmberDataSerializer.read_file(path)]
