"""The pytest plugin (``provider_impl.pytest_plugin``, entry point ``pytest11``) in a
throwaway project that has nothing but the plugin: it records from the bundled
emulator, replays green with the network blocked, and does so under xdist."""

from __future__ import annotations

import ast
import re
import socket
from pathlib import Path

import pytest

from provider_impl.dialect_file import dialect_to_toml
from provider_impl.dialects import DIALECTS
from provider_impl.pytest_plugin import NetworkBlocked, block_network
from provider_impl.recording import load_interactions

# This suite's other plugins stay out of the throwaway project: hypothesis's
# end-of-run hook imports hypothesis (a second a run, testing nothing here) and
# pytest-asyncio warns about its unset options (into this run's summary when the
# project runs in this process).
PLUGIN = ("-p", "provider_impl.pytest_plugin", "-p", "no:hypothesispytest", "-p", "no:asyncio")
README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_example() -> str:
    """The plugin's example in the README, run here as written."""
    text = README.read_text(encoding="utf-8")
    found = re.search(r"```python\n(# test_my_gateway\.py.*?)```", text, re.S)
    assert found is not None, "the README lost its plugin example"
    return found.group(1)


def _parameters(source: str) -> dict[str, list[str]]:
    """The example test's ``parametrize`` lists, by argument name."""
    test = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef))
    return {
        ast.literal_eval(d.args[0]): ast.literal_eval(d.args[1])
        for d in test.decorator_list
        if isinstance(d, ast.Call)
    }


PROJECT_TEST = _readme_example()
PARAMS = _parameters(PROJECT_TEST)
N_TESTS = len(PARAMS["provider"]) * len(PARAMS["scenario"])


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    acme = dialect_to_toml(DIALECTS["openai"]).replace('name = "openai"', 'name = "acme"')
    pytester.makefile(
        ".toml", acme=acme.replace("https://api.openai.com/v1", "https://acme.test/v1")
    )
    pytester.makepyfile(test_battery=PROJECT_TEST)
    return pytester


def _run(project: pytest.Pytester, *args: str, fresh: bool = False) -> pytest.RunResult:
    """The project's pytest run: in this process (a new session, config and plugin
    manager; a second quicker than a new interpreter), or with ``fresh`` in a new one
    (the xdist run: its workers are new interpreters too)."""
    run = project.runpytest_subprocess if fresh else project.runpytest_inprocess
    return run(*PLUGIN, "--provider-cassettes", "cassettes", "--dialect-file", "acme.toml", *args)


def _cassettes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*.yaml")}


def test_records_from_the_emulator_then_replays_green_also_under_xdist(
    project: pytest.Pytester,
) -> None:
    assert "acme" in PARAMS["provider"] and "text" in PARAMS["scenario"]
    n = N_TESTS
    missing = _run(project)  # record mode none: nothing to replay yet
    missing.assert_outcomes(failed=n)
    missing.stdout.fnmatch_lines(["*missing cassette*--record-mode=once*"])

    recorded = _run(project, "--record-mode", "once")
    recorded.assert_outcomes(passed=n)
    root = project.path / "cassettes"
    written = _cassettes(root)
    assert len(written) == n
    # What was recorded is a real cassette: acme's real URL, no emulator key.
    interactions = load_interactions(root / "acme" / "text.yaml")
    assert interactions[0].uri == "https://acme.test/v1/chat/completions"

    replayed = _run(project)  # the default: replay only, network blocked
    replayed.assert_outcomes(passed=n)
    assert _cassettes(root) == written  # replay writes nothing

    parallel = _run(project, "-n", "2", fresh=True)
    parallel.assert_outcomes(passed=n)
    parallel.stdout.fnmatch_lines(["*2 workers*"])
    assert _cassettes(root) == written


def test_new_episodes_re_records_a_stale_cassette_and_once_does_not(
    project: pytest.Pytester,
) -> None:
    _run(project, "--record-mode", "once", "-k", "mistral and text").assert_outcomes(passed=1)
    path = project.path / "cassettes" / "mistral" / "text.yaml"
    original = path.read_text()
    # A request the client would no longer send (the model changed since recording).
    path.write_text(original.replace("model: mistral-", "model: stale-", 1))
    assert path.read_text() != original
    _run(project, "--record-mode", "once", "-k", "mistral and text")
    assert "model: stale-" in path.read_text()  # once: present, kept
    _run(project, "--record-mode", "new_episodes", "-k", "mistral and text").assert_outcomes(
        passed=1
    )
    assert "model: stale-" not in path.read_text()


def test_block_network_refuses_all_but_loopback() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with block_network():
            socket.create_connection(server.getsockname(), timeout=5).close()  # loopback: fine
            with pytest.raises(NetworkBlocked, match="network blocked"):
                socket.create_connection(("192.0.2.1", 80), timeout=5)
    # Outside the block the real connect is back.
    assert socket.socket.connect.__qualname__ == "socket.connect"


def test_the_block_network_option_covers_every_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_net="""
        import socket
        import pytest
        from provider_impl.pytest_plugin import NetworkBlocked

        def test_out():
            with pytest.raises(NetworkBlocked):
                socket.create_connection(("192.0.2.1", 80), timeout=5)
        """
    )
    pytester.runpytest_inprocess(*PLUGIN, "--block-network").assert_outcomes(passed=1)


# -- conventional cassettes: plain vcrpy -------------------------------------------


@pytest.mark.parametrize("name", ["mistral/tool_call.yaml", "openai/text_nonstream.yaml"])
def test_a_shipped_cassette_plays_in_plain_vcrpy(name: str) -> None:
    import httpx
    import vcr

    from provider_impl.conformance import shipped_cassettes
    from provider_impl.recording import serializer

    path = shipped_cassettes() / name
    recorder = serializer.register(vcr.VCR(record_mode="none"))
    recorded = load_interactions(path)[0]
    with recorder.use_cassette(str(path), serializer="provider-impl"), httpx.Client() as client:
        reply = client.post(
            recorded.uri,
            content=recorded.request_bytes,
            headers={"content-type": "application/json"},
        )
    assert reply.status_code == recorded.status == 200
    assert reply.content == recorded.body
    if name.startswith("mistral"):  # a stream, as the provider sent it
        assert reply.headers["content-type"].startswith("text/event-stream")
        assert reply.text.rstrip().endswith("data: [DONE]")
    else:
        assert reply.json()["object"] == "chat.completion"


def test_plain_vcrpy_does_not_know_the_name_unregistered() -> None:
    import vcr

    from provider_impl.conformance import shipped_cassettes

    path = shipped_cassettes() / "mistral" / "text.yaml"
    with (
        pytest.raises(KeyError, match="provider-impl"),
        vcr.VCR(record_mode="none").use_cassette(str(path), serializer="provider-impl"),
    ):
        pass
