"""The payload builder: the exact JSON body each dialect is sent, and refusal of bad
input (InvalidRequest naming the field) before any I/O."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from provider_impl import (
    CompletionRequest,
    InvalidRequest,
    Message,
    OpenAiCompatibleProvider,
    ToolCall,
    ToolDefinition,
)
from provider_impl.dialects import DIALECTS, get_dialect
from provider_impl.payload import build_payload

FACTORIES: dict[str, Callable[..., OpenAiCompatibleProvider]] = {
    "openai": OpenAiCompatibleProvider.openai,
    "gemini": OpenAiCompatibleProvider.gemini,
    "mistral": OpenAiCompatibleProvider.mistral,
    "glm": OpenAiCompatibleProvider.glm,
    "claude_subscription": OpenAiCompatibleProvider.claude_subscription,
}

WEATHER_PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
    "required": ["city"],
}
WEATHER = ToolDefinition("get_weather", "Current weather for a city", WEATHER_PARAMS)

REQUEST = CompletionRequest(
    messages=[Message(role="user", content="Weather in Paris?")],
    system="You are terse.",
    max_tokens=256,
    temperature=0.2,
    tools=[WEATHER],
)

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Weather in Paris?"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": WEATHER_PARAMS,
        },
    }
]

# What each dialect is sent for REQUEST, streaming (the closing-note table).
EXPECTED_STREAMING: dict[str, dict[str, Any]] = {
    "openai": {
        "model": "gpt-4o",
        "messages": MESSAGES,
        "max_completion_tokens": 256,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "tools": TOOLS,
    },
    "gemini": {
        "model": "gemini-2.5-flash",
        "messages": MESSAGES,
        "max_tokens": 256,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "tools": TOOLS,
    },
    "mistral": {
        "model": "mistral-large-latest",
        "messages": MESSAGES,
        "max_tokens": 256,
        "stream": True,
        "temperature": 0.2,
        "tools": TOOLS,
    },
    "glm": {
        "model": "glm-4.7",
        "messages": MESSAGES,
        "max_tokens": 256,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "tools": TOOLS,
    },
    # It cannot call tools: REQUEST is refused (below); this is REQUEST without them.
    # It never streams usage, so nothing asks for it.
    "claude_subscription": {
        "model": "claude-sonnet-4",
        "messages": MESSAGES,
        "max_tokens": 256,
        "stream": True,
        "temperature": 0.2,
    },
}


def make(name: str, **kw: Any) -> OpenAiCompatibleProvider:
    return FACTORIES[name](api_key="test-key", **kw)


def _for(name: str, request: CompletionRequest) -> CompletionRequest:
    """``request`` as a dialect that cannot call tools accepts it: without tools (and
    its refusal of them checked on the way)."""
    if make(name).capabilities.tool_calling or request.tools is None:
        return request
    with pytest.raises(InvalidRequest) as info:
        make(name).build_request(request)
    assert info.value.field == "tools"
    return dataclasses.replace(request, tools=None, tool_choice=None, parallel_tool_calls=None)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_streaming_body_with_system_and_tools(name: str) -> None:
    body = make(name).build_request(_for(name, REQUEST), stream=True)
    assert body == EXPECTED_STREAMING[name]
    assert body["messages"][0]["role"] == "system"  # the system prompt first
    json.dumps(body)  # JSON-ready


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_non_streaming_body_has_no_stream_options(name: str) -> None:
    body = make(name).build_request(_for(name, REQUEST), stream=False)
    expected = dict(EXPECTED_STREAMING[name], stream=False)
    expected.pop("stream_options", None)
    assert body == expected


def test_mistral_never_gets_openai_only_parameters() -> None:
    mistral = make("mistral")
    for stream in (True, False):
        body = mistral.build_request(REQUEST, stream=stream)
        assert "stream_options" not in body
        assert "max_completion_tokens" not in body
        assert body["max_tokens"] == 256
    # and only OpenAI uses max_completion_tokens
    for name in FACTORIES:
        body = make(name).build_request(_for(name, REQUEST), stream=True)
        assert ("max_completion_tokens" in body) == (name == "openai")
        assert ("max_tokens" in body) == (name != "openai")


def test_default_request_keywords_work() -> None:
    req = CompletionRequest(messages=[Message(role="user", content="hi")], max_tokens=100)
    assert make("openai").build_request(req) == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 100,
        "stream": False,
    }


def test_tool_conversation_round_trip() -> None:
    req = CompletionRequest(
        messages=[
            Message.user("Weather in Paris and Rome?"),
            Message.assistant(
                "Checking.",
                tool_calls=[
                    ToolCall("call_1", "get_weather", {"city": "Paris"}),
                    ToolCall("call_2", "get_weather", {"city": "Rome", "unit": "c"}),
                ],
            ),
            Message.tool_result("call_1", "18C sunny"),
            Message(role="tool", content="22C", tool_call_id="call_2"),
            Message.user("Thanks"),
        ],
        tools=[WEATHER],
    )
    msgs = make("glm").build_request(req)["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "tool", "user"]
    assistant = msgs[1]
    assert assistant["content"] == "Checking."
    calls = assistant["tool_calls"]
    assert [(c["id"], c["type"], c["function"]["name"]) for c in calls] == [
        ("call_1", "function", "get_weather"),
        ("call_2", "function", "get_weather"),
    ]
    # arguments go out as a JSON string, as the OpenAI wire format wants
    assert all(isinstance(c["function"]["arguments"], str) for c in calls)
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [
        {"city": "Paris"},
        {"city": "Rome", "unit": "c"},
    ]
    assert msgs[2] == {"role": "tool", "tool_call_id": "call_1", "content": "18C sunny"}
    assert msgs[3] == {"role": "tool", "tool_call_id": "call_2", "content": "22C"}


def test_assistant_tool_call_without_text_and_non_ascii_arguments() -> None:
    req = CompletionRequest(
        messages=[
            Message.user("x"),
            Message.assistant(tool_calls=[ToolCall("c", "get_weather", {"city": "Zürich"})]),
            Message.tool_result("c", "ok"),
        ],
    )
    (_, assistant, _) = make("openai").build_request(req)["messages"]
    assert assistant["content"] is None
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Zürich"}


def test_optional_parameters() -> None:
    req = CompletionRequest(
        messages=[Message.user("hi")],
        top_p=0.9,
        stop_sequences=["END", "\n\n"],
        tools=[WEATHER],
        tool_choice="get_weather",
        parallel_tool_calls=False,
        model="override-model",
    )
    body = make("openai", model="factory-model").build_request(req)
    assert body["model"] == "override-model"
    assert body["top_p"] == 0.9
    assert body["stop"] == ["END", "\n\n"]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert "temperature" not in body


def test_factory_model_replaces_the_default() -> None:
    req = CompletionRequest(messages=[Message.user("hi")])
    assert make("gemini", model="gemini-2.5-pro").build_request(req)["model"] == "gemini-2.5-pro"


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
def test_tool_choice_words(choice: str) -> None:
    req = CompletionRequest(messages=[Message.user("hi")], tools=[WEATHER], tool_choice=choice)
    assert make("openai").build_request(req)["tool_choice"] == choice


def test_tool_choice_dict_passes_through() -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    req = CompletionRequest(messages=[Message.user("hi")], tools=[WEATHER], tool_choice=choice)
    assert make("openai").build_request(req)["tool_choice"] == choice


def test_extra_body_is_merged_last() -> None:
    req = CompletionRequest(
        messages=[Message.user("hi")],
        temperature=0.5,
        extra_body={
            "temperature": 1.5,
            "seed": 7,
            "stream_options": {"include_usage": True, "include_obfuscation": False},
            "thinking": {"type": "enabled"},
        },
    )
    body = make("openai").build_request(req, stream=True)
    assert body["temperature"] == 1.5
    assert body["seed"] == 7
    assert body["stream_options"] == {"include_usage": True, "include_obfuscation": False}
    assert body["thinking"] == {"type": "enabled"}
    # an explicit extra_body may deliberately send what the dialect would not
    mistral = make("mistral").build_request(
        CompletionRequest(messages=[Message.user("hi")], extra_body={"safe_prompt": True}),
        stream=True,
    )
    assert mistral["safe_prompt"] is True and "stream_options" not in mistral


def test_build_request_does_not_mutate_the_request() -> None:
    extra = {"seed": 1}
    req = CompletionRequest(messages=[Message.user("hi")], tools=[WEATHER], extra_body=extra)
    body = make("openai").build_request(req)
    body["tools"][0]["function"]["parameters"]["mutated"] = True
    body["seed"] = 2
    assert "mutated" not in WEATHER.parameters
    assert extra == {"seed": 1}


# -- refusals, before any I/O --------------------------------------------------------


def _explode(request: httpx.Request) -> httpx.Response:
    pytest.fail(f"no request may be sent for invalid input, got {request.method} {request.url}")


def _first_tool_field(req: CompletionRequest) -> str | None:
    """Where a dialect that cannot call tools first finds one: a message making or
    answering a call, else the tools, tool_choice or parallel_tool_calls field."""
    for i, msg in enumerate(req.messages):
        if msg.role == "tool":
            return f"messages[{i}].role"
        if msg.tool_calls:
            return f"messages[{i}].tool_calls"
    for name in ("tools", "tool_choice", "parallel_tool_calls"):
        if getattr(req, name) is not None:
            return name
    return None


def offline(name: str) -> OpenAiCompatibleProvider:
    return FACTORIES[name](
        api_key="test-key",
        http_client=httpx.Client(transport=httpx.MockTransport(_explode)),
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(_explode)),
        max_retries=0,
    )


def user(text: str = "hi") -> Message:
    return Message(role="user", content=text)


BAD: list[tuple[str, Callable[[int], CompletionRequest], str]] = [
    ("no messages", lambda cap: CompletionRequest(messages=[]), "messages"),
    ("max_tokens 0", lambda cap: CompletionRequest(messages=[user()], max_tokens=0), "max_tokens"),
    (
        "max_tokens -1",
        lambda cap: CompletionRequest(messages=[user()], max_tokens=-1),
        "max_tokens",
    ),
    (
        "max_tokens above cap",
        lambda cap: CompletionRequest(messages=[user()], max_tokens=cap + 1),
        "max_tokens",
    ),
    (
        "temperature < 0",
        lambda cap: CompletionRequest(messages=[user()], temperature=-0.01),
        "temperature",
    ),
    (
        "temperature > 2",
        lambda cap: CompletionRequest(messages=[user()], temperature=2.01),
        "temperature",
    ),
    (
        "temperature nan",
        lambda cap: CompletionRequest(messages=[user()], temperature=math.nan),
        "temperature",
    ),
    ("top_p > 1", lambda cap: CompletionRequest(messages=[user()], top_p=1.5), "top_p"),
    (
        "tool name with space",
        lambda cap: CompletionRequest(messages=[user()], tools=[ToolDefinition("get weather")]),
        "tools[0].name",
    ),
    (
        "tool name empty",
        lambda cap: CompletionRequest(messages=[user()], tools=[WEATHER, ToolDefinition("")]),
        "tools[1].name",
    ),
    (
        "tool name too long",
        lambda cap: CompletionRequest(messages=[user()], tools=[ToolDefinition("x" * 65)]),
        "tools[0].name",
    ),
    (
        "tool name not ascii",
        lambda cap: CompletionRequest(messages=[user()], tools=[ToolDefinition("météo")]),
        "tools[0].name",
    ),
    (
        "tool name with a dot",
        lambda cap: CompletionRequest(messages=[user()], tools=[ToolDefinition("a.b")]),
        "tools[0].name",
    ),
    (
        "tool name ending in newline",
        lambda cap: CompletionRequest(messages=[user()], tools=[ToolDefinition("ab\n")]),
        "tools[0].name",
    ),
    (
        "tool result for an unknown call",
        lambda cap: CompletionRequest(messages=[user(), Message.tool_result("call_nope", "42")]),
        "messages[1].tool_call_id",
    ),
    (
        "tool result before its call",
        lambda cap: CompletionRequest(
            messages=[
                user(),
                Message.tool_result("c1", "42"),
                Message.assistant(tool_calls=[ToolCall("c1", "get_weather", {})]),
            ]
        ),
        "messages[1].tool_call_id",
    ),
    (
        "tool_choice naming no tool",
        lambda cap: CompletionRequest(messages=[user()], tools=[WEATHER], tool_choice="get_time"),
        "tool_choice",
    ),
    (
        "tool_choice without tools",
        lambda cap: CompletionRequest(messages=[user()], tool_choice="get_weather"),
        "tool_choice",
    ),
    (
        "tool_choice dict naming no tool",
        lambda cap: CompletionRequest(
            messages=[user()],
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_time"}},
        ),
        "tool_choice",
    ),
    (
        "stop as a string",
        lambda cap: CompletionRequest(messages=[user()], stop_sequences="END"),
        "stop_sequences",
    ),
]


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize(("case", "make_request", "field"), BAD, ids=[b[0] for b in BAD])
async def test_invalid_requests_name_their_field_before_any_io(
    name: str, case: str, make_request: Callable[[int], CompletionRequest], field: str
) -> None:
    provider = offline(name)
    req = make_request(provider.capabilities.max_output_tokens)
    if not provider.capabilities.tool_calling and (
        field.startswith("tool") or ".tool_call" in field
    ):
        field = _first_tool_field(req) or field
    attempts: list[Callable[[], Any]] = [
        lambda: provider.build_request(req, stream=True),
        lambda: provider.build_request(req, stream=False),
        lambda: provider.complete(req),
        lambda: provider.stream(req),  # raises on the call, before iteration
        lambda: provider.astream(req),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidRequest) as info:
            attempt()
        err = info.value
        assert err.field == field, case
        assert field in str(err)
        assert err.provider == name
    with pytest.raises(InvalidRequest) as ainfo:
        await provider.acomplete(req)
    assert ainfo.value.field == field


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_boundaries_are_accepted(name: str) -> None:
    provider = make(name)
    cap = provider.capabilities.max_output_tokens
    t_max = provider.dialect.max_temperature
    for kw in (
        {"max_tokens": 1},
        {"max_tokens": cap},
        {"temperature": 0},
        {"temperature": t_max},
        {"temperature": 1},
        {"top_p": 0.0},
        {"top_p": 1},
    ):
        req = CompletionRequest(messages=[user()], **kw)  # type: ignore[arg-type]
        body = provider.build_request(req)
        key = next(iter(kw))
        out_key = provider.dialect.max_tokens_param if key == "max_tokens" else key
        assert body[out_key] == kw[key]
    tools = [ToolDefinition("a"), ToolDefinition("A-b_9"), ToolDefinition("x" * 64)]
    if not provider.capabilities.tool_calling:
        return
    body = provider.build_request(CompletionRequest(messages=[user()], tools=tools))
    assert [t["function"]["name"] for t in body["tools"]] == ["a", "A-b_9", "x" * 64]


def test_temperature_ceiling_is_per_dialect() -> None:
    ceilings = {name: make(name).dialect.max_temperature for name in FACTORIES}
    assert all(0 < c <= 2 for c in ceilings.values())
    for name, ceiling in ceilings.items():
        with pytest.raises(InvalidRequest) as info:
            make(name).build_request(
                CompletionRequest(messages=[user()], temperature=ceiling + 0.01)
            )
        assert info.value.field == "temperature"


def test_parameters_a_dialect_refuses_are_left_out() -> None:
    req = CompletionRequest(messages=[user()], tools=[WEATHER], parallel_tool_calls=True)
    for name in FACTORIES:
        provider = make(name)
        if not provider.capabilities.tool_calling:
            continue  # it refuses both (test_no_tools_are_sent_where_none_can_be_called)
        body = provider.build_request(req, stream=True)
        assert not provider.dialect.forbidden_params & set(body), name
        if "parallel_tool_calls" not in provider.dialect.forbidden_params:
            assert body["parallel_tool_calls"] is True


def test_max_tokens_cap_is_per_dialect() -> None:
    caps = {name: make(name).capabilities.max_output_tokens for name in FACTORIES}
    assert caps == {
        "openai": 16_384,
        "gemini": 65_536,
        "mistral": 32_768,
        "glm": 128_000,
        "claude_subscription": 128_000,
    }
    req = CompletionRequest(messages=[user()], max_tokens=20_000)
    with pytest.raises(InvalidRequest):
        make("openai").build_request(req)
    assert make("mistral").build_request(req)["max_tokens"] == 20_000


def test_non_request_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        make("openai").build_request({"messages": []})  # type: ignore[arg-type]


def test_message_constructor_checks() -> None:
    with pytest.raises(ValueError):
        Message(role="robot", content="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Message(role="tool", content="x")  # no tool_call_id
    with pytest.raises(ValueError):
        Message(role="user", content="x", tool_calls=[ToolCall("a", "b")])
    with pytest.raises(ValueError):
        Message(role="user", content="x", tool_call_id="c")


NO_TOOLS = [d.name for d in DIALECTS.values() if not d.capabilities.tool_calling]
CALL = ToolCall("call12345", "get_weather", {"city": "Paris"})
TOOL_REQUESTS: list[tuple[str, CompletionRequest, str]] = [
    ("tools", CompletionRequest(messages=[user()], tools=[WEATHER]), "tools"),
    ("tool_choice", CompletionRequest(messages=[user()], tool_choice="none"), "tool_choice"),
    (
        "parallel_tool_calls",
        CompletionRequest(messages=[user()], parallel_tool_calls=False),
        "parallel_tool_calls",
    ),
    (
        "assistant tool_calls",
        CompletionRequest(messages=[user(), Message.assistant(tool_calls=[CALL])]),
        "messages[1].tool_calls",
    ),
    (
        "a tool result",
        CompletionRequest(
            messages=[
                user(),
                Message.assistant(tool_calls=[CALL]),
                Message.tool_result("call12345", "18 degrees"),
            ]
        ),
        "messages[1].tool_calls",
    ),
]


@pytest.mark.parametrize("name", NO_TOOLS)
@pytest.mark.parametrize(("case", "req", "field"), TOOL_REQUESTS, ids=[t[0] for t in TOOL_REQUESTS])
async def test_no_tools_are_sent_where_none_can_be_called(
    name: str, case: str, req: CompletionRequest, field: str
) -> None:
    """A dialect whose record says tool_calling=False refuses every tool field before
    any I/O (the offline provider's transport raises if it is ever used)."""
    provider = offline(name)
    for attempt in (
        lambda: provider.build_request(req),
        lambda: provider.complete(req),
        lambda: provider.stream(req),
    ):
        with pytest.raises(InvalidRequest) as info:
            attempt()
        assert info.value.field == field, case
        assert "tool" in str(info.value)
    with pytest.raises(InvalidRequest):
        await provider.acomplete(req)


def test_a_tool_message_alone_is_refused_by_its_role() -> None:
    dialect = dataclasses.replace(
        get_dialect("openai"),
        name="no_tools",
        capabilities=dataclasses.replace(get_dialect("openai").capabilities, tool_calling=False),
    )
    # A tool result that answers nothing is refused by its role first, not its id.
    req = CompletionRequest(messages=[user(), Message.tool_result("call12345", "x")])
    with pytest.raises(InvalidRequest) as info:
        OpenAiCompatibleProvider(dialect, api_key="k").build_request(req)
    assert info.value.field == "messages[1].role"


MODEL_NAMED = [d.name for d in DIALECTS.values() if d.model_names]


@pytest.mark.parametrize("name", MODEL_NAMED)
def test_model_names_map_to_names_the_endpoint_knows(name: str) -> None:
    provider = make(name)
    table = provider.dialect.model_names
    known = set(table.values())
    # The default runs as what it names: it is a name the endpoint knows.
    assert provider.build_request(CompletionRequest(messages=[user()]))["model"] in known
    assert provider.dialect.default_model in known
    for word, sent in table.items():
        for asked in (sent, f"claude-{word}-4-20250514", f"{word}-latest"):
            body = provider.build_request(CompletionRequest(messages=[user()], model=asked))
            assert body["model"] == sent, asked
    with pytest.raises(InvalidRequest) as info:
        provider.build_request(CompletionRequest(messages=[user()], model="gpt-4o"))
    assert info.value.field == "model" and "gpt-4o" in str(info.value)
    with pytest.raises(InvalidRequest):
        make(name, model="gpt-4o").build_request(CompletionRequest(messages=[user()]))


ARG_LIMITED = [d.name for d in DIALECTS.values() if d.prompt_arg_max_bytes]


@pytest.mark.parametrize("name", ARG_LIMITED)
async def test_a_prompt_over_the_argument_limit_is_refused_before_io(name: str) -> None:
    provider = offline(name)
    limit = provider.dialect.prompt_arg_max_bytes
    assert limit is not None
    # One user message is sent as its own text: limit - 1 bytes (the NUL makes limit) fits.
    fits = CompletionRequest(messages=[Message.user("x" * (limit - 1))])
    assert provider.build_request(fits)["messages"][0]["content"] == "x" * (limit - 1)
    # Multi-byte text counts in UTF-8 bytes, not characters.
    over = CompletionRequest(messages=[Message.user("\u00e9" * (limit // 2))])
    big = CompletionRequest(messages=[Message.user("y" * 140_000)])
    system = CompletionRequest(messages=[Message.user("y" * (limit - 10))], system="a long system")
    for req in (over, big, system):
        for attempt in (provider.build_request, provider.complete, provider.stream):
            with pytest.raises(InvalidRequest) as info:
                attempt(req)
            assert info.value.field == "messages" and "argument" in str(info.value)
        with pytest.raises(InvalidRequest):
            await provider.acomplete(req)
    with pytest.raises(InvalidRequest) as info:
        provider.build_request(CompletionRequest(messages=[Message.user("a\x00b")]))
    assert "NUL" in str(info.value)


@pytest.mark.parametrize("name", sorted(DIALECTS))
@pytest.mark.parametrize("flag", [True, False])
def test_the_builder_follows_the_stream_usage_flag(name: str, flag: bool) -> None:
    """``stream_usage_option`` alone decides ``stream_options``: with no forbidden
    parameter to strip it again (Mistral forbids stream_options, which would hide a
    builder that ignored the flag), a streaming body carries it exactly when the
    flag is set, and a whole-reply body never."""
    dialect = dataclasses.replace(
        DIALECTS[name], stream_usage_option=flag, forbidden_params=frozenset()
    )
    request = CompletionRequest(messages=[Message.user("Hi")], max_tokens=5)
    model = dialect.default_model
    streaming = build_payload(request, dialect, model, stream=True)
    if flag:
        assert streaming["stream_options"] == {"include_usage": True}
    else:
        assert "stream_options" not in streaming
    assert "stream_options" not in build_payload(request, dialect, model, stream=False)
