"""Bad input of every shape is refused by ``build_payload`` with ``InvalidRequest``
naming the field, before any I/O; odd but meaningful input (a generator of
messages, arguments as JSON text, a read-only mapping) is sent whole."""

from __future__ import annotations

import datetime
import json
import types
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from provider_impl import (
    CompletionRequest,
    InvalidRequest,
    LlmError,
    Message,
    OpenAiCompatibleProvider,
    ToolCall,
    ToolDefinition,
)

FACTORIES: dict[str, Callable[..., OpenAiCompatibleProvider]] = {
    "openai": OpenAiCompatibleProvider.openai,
    "gemini": OpenAiCompatibleProvider.gemini,
    "mistral": OpenAiCompatibleProvider.mistral,
    "glm": OpenAiCompatibleProvider.glm,
    "claude_subscription": OpenAiCompatibleProvider.claude_subscription,
}

PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
WEATHER = ToolDefinition("get_weather", "Current weather for a city", PARAMS)


def user(text: str = "hi") -> Message:
    return Message(role="user", content=text)


def req(**kw: Any) -> CompletionRequest:
    """A request from untyped keywords, so that wrong types reach the builder."""
    kw.setdefault("messages", [user()])
    return CompletionRequest(**kw)


def call_turn(call: Any) -> list[Message]:
    """user -> assistant making ``call`` (untyped, as a caller might build it)."""
    return [user(), Message(role="assistant", tool_calls=(call,))]


def assistant_raw(**kw: Any) -> Message:
    return Message(role="assistant", **kw)


# Untyped constructors: wrong types on purpose, as a caller without a type checker
# would pass them.
def msg(**kw: Any) -> Message:
    return Message(**kw)


def tool_call(*args: Any) -> ToolCall:
    return ToolCall(*args)


def tool_def(*args: Any) -> ToolDefinition:
    return ToolDefinition(*args)


class Recorder:
    """An HTTP transport that records (and refuses) every request sent to it."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        raise AssertionError(f"no request may be sent, got {request.method} {request.url}")


def offline(recorder: Recorder, name: str = "openai") -> OpenAiCompatibleProvider:
    return FACTORIES[name](
        api_key="test-key-123456",
        http_client=httpx.Client(transport=httpx.MockTransport(recorder)),
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(recorder)),
        max_retries=0,
    )


# (case id, request factory, the field InvalidRequest must name)
BAD: list[tuple[str, Callable[[], CompletionRequest], str]] = [
    # messages: the container
    ("messages a single Message", lambda: req(messages=user()), "messages"),
    ("messages a string", lambda: req(messages="hi"), "messages"),
    ("messages bytes", lambda: req(messages=b"hi"), "messages"),
    ("messages a mapping", lambda: req(messages={"role": "user", "content": "hi"}), "messages"),
    ("messages a set", lambda: req(messages={user()}), "messages"),
    ("messages an int", lambda: req(messages=5), "messages"),
    ("messages None", lambda: req(messages=None), "messages"),
    ("messages an empty generator", lambda: req(messages=iter(())), "messages"),
    ("messages holding a dict", lambda: req(messages=[{"role": "user"}]), "messages[0]"),
    # messages: content by role
    ("user content None", lambda: req(messages=[Message(role="user")]), "messages[0].content"),
    (
        "user content an int",
        lambda: req(messages=[msg(role="user", content=5)]),
        "messages[0].content",
    ),
    (
        "system message content None",
        lambda: req(messages=[Message(role="system"), user()]),
        "messages[0].content",
    ),
    (
        "assistant content an int",
        lambda: req(messages=[user(), assistant_raw(content=5)]),
        "messages[1].content",
    ),
    (
        # A list is content parts now; a bare string in it is not a part.
        "assistant content a list of strings",
        lambda: req(messages=[user(), assistant_raw(content=["a"])]),
        "messages[1].content[0]",
    ),
    (
        "tool content None",
        lambda: req(
            messages=[
                *call_turn(ToolCall("c1", "get_weather", {})),
                Message(role="tool", tool_call_id="c1"),
            ]
        ),
        "messages[2].content",
    ),
    (
        "tool content an int",
        lambda: req(
            messages=[
                *call_turn(ToolCall("c1", "get_weather", {})),
                msg(role="tool", tool_call_id="c1", content=5),
            ]
        ),
        "messages[2].content",
    ),
    (
        "tool_call_id not a string",
        lambda: req(
            messages=[
                *call_turn(ToolCall("c1", "get_weather", {})),
                msg(role="tool", tool_call_id=["c1"], content="x"),
            ]
        ),
        "messages[2].tool_call_id",
    ),
    # messages: tool calls
    (
        "tool_calls a single ToolCall",
        lambda: req(messages=[user(), assistant_raw(tool_calls=ToolCall("c1", "get_weather"))]),
        "messages[1].tool_calls",
    ),
    (
        "tool_calls holding a dict",
        lambda: req(messages=call_turn({"id": "c1", "name": "get_weather"})),
        "messages[1].tool_calls[0]",
    ),
    (
        "tool call with an empty id",
        lambda: req(messages=call_turn(ToolCall("", "f"))),
        "messages[1].tool_calls[0].id",
    ),
    (
        "tool call with an int id",
        lambda: req(messages=call_turn(tool_call(7, "f"))),
        "messages[1].tool_calls[0].id",
    ),
    (
        "tool call with an empty name",
        lambda: req(messages=call_turn(ToolCall("c1", ""))),
        "messages[1].tool_calls[0].name",
    ),
    (
        "tool call name with a dot",
        lambda: req(messages=call_turn(ToolCall("c1", "a.b"))),
        "messages[1].tool_calls[0].name",
    ),
    (
        "tool call name too long",
        lambda: req(messages=call_turn(ToolCall("c1", "x" * 65))),
        "messages[1].tool_calls[0].name",
    ),
    (
        "arguments text that is not JSON",
        lambda: req(messages=call_turn(tool_call("c1", "f", "{city: Paris}"))),
        "messages[1].tool_calls[0].arguments",
    ),
    (
        "arguments JSON text of a list",
        lambda: req(messages=call_turn(tool_call("c1", "f", '["Paris"]'))),
        "messages[1].tool_calls[0].arguments",
    ),
    (
        "arguments empty text",
        lambda: req(messages=call_turn(tool_call("c1", "f", ""))),
        "messages[1].tool_calls[0].arguments",
    ),
    (
        "arguments JSON text with NaN",
        lambda: req(messages=call_turn(tool_call("c1", "f", '{"x": NaN}'))),
        "messages[1].tool_calls[0].arguments",
    ),
    (
        "arguments an int",
        lambda: req(messages=call_turn(tool_call("c1", "f", 5))),
        "messages[1].tool_calls[0].arguments",
    ),
    (
        "arguments holding a date",
        lambda: req(messages=call_turn(ToolCall("c1", "f", {"day": datetime.date(2025, 1, 1)}))),
        "messages[1].tool_calls[0].arguments",
    ),
    (
        "second call's arguments bad",
        lambda: req(
            messages=[
                user(),
                Message.assistant(
                    tool_calls=[ToolCall("c1", "f", {}), tool_call("c2", "f", "nope")]
                ),
            ]
        ),
        "messages[1].tool_calls[1].arguments",
    ),
    # scalar fields
    ("system an int", lambda: req(system=5), "system"),
    ("system a list", lambda: req(system=["a"]), "system"),
    ("model an int", lambda: req(model=5), "model"),
    ("max_tokens True", lambda: req(max_tokens=True), "max_tokens"),
    ("max_tokens a float", lambda: req(max_tokens=100.0), "max_tokens"),
    ("max_tokens text", lambda: req(max_tokens="100"), "max_tokens"),
    (
        "parallel_tool_calls an int",
        lambda: req(tools=[WEATHER], parallel_tool_calls=1),
        "parallel_tool_calls",
    ),
    (
        "parallel_tool_calls text",
        lambda: req(tools=[WEATHER], parallel_tool_calls="yes"),
        "parallel_tool_calls",
    ),
    # stop sequences
    ("stop_sequences an int", lambda: req(stop_sequences=5), "stop_sequences"),
    ("stop_sequences bytes", lambda: req(stop_sequences=b"END"), "stop_sequences"),
    ("stop_sequences a mapping", lambda: req(stop_sequences={"a": 1}), "stop_sequences"),
    ("stop_sequences holding an int", lambda: req(stop_sequences=["END", 5]), "stop_sequences[1]"),
    # tools
    ("tools a single ToolDefinition", lambda: req(tools=WEATHER), "tools"),
    ("tools a string", lambda: req(tools="get_weather"), "tools"),
    ("tools a mapping", lambda: req(tools={"name": "get_weather"}), "tools"),
    ("tools holding a dict", lambda: req(tools=[{"name": "get_weather"}]), "tools[0]"),
    ("tool description None", lambda: req(tools=[tool_def("f", None)]), "tools[0].description"),
    ("tool parameters an int", lambda: req(tools=[tool_def("f", "", 5)]), "tools[0].parameters"),
    (
        "tool parameters of type string",
        lambda: req(tools=[ToolDefinition("f", "", {"type": "string"})]),
        "tools[0].parameters",
    ),
    (
        "tool parameters holding a date",
        lambda: req(
            tools=[
                WEATHER,
                ToolDefinition(
                    "f", "", {"type": "object", "default": {"day": datetime.date(2025, 1, 1)}}
                ),
            ]
        ),
        "tools[1].parameters",
    ),
    (
        "tool parameters holding NaN",
        lambda: req(tools=[ToolDefinition("f", "", {"type": "object", "maximum": float("nan")})]),
        "tools[0].parameters",
    ),
    # tool_choice
    ("tool_choice an int", lambda: req(tools=[WEATHER], tool_choice=5), "tool_choice"),
    ("tool_choice a list", lambda: req(tools=[WEATHER], tool_choice=["auto"]), "tool_choice"),
    ("tool_choice required without tools", lambda: req(tool_choice="required"), "tool_choice"),
    ("tool_choice any without tools", lambda: req(tool_choice="any"), "tool_choice"),
    (
        "tool_choice required with empty tools",
        lambda: req(tools=[], tool_choice="required"),
        "tool_choice",
    ),
    ("tool_choice a name without tools", lambda: req(tool_choice="get_weather"), "tool_choice"),
    (
        "tool_choice mapping without tools",
        lambda: req(tool_choice={"type": "function", "function": {"name": "get_weather"}}),
        "tool_choice",
    ),
    (
        "tool_choice mapping with a bare function name",
        lambda: req(tools=[WEATHER], tool_choice={"type": "function", "function": "get_weather"}),
        "tool_choice",
    ),
    (
        "tool_choice mapping holding a date",
        lambda: req(tools=[WEATHER], tool_choice={"type": "auto", "at": datetime.date(2025, 1, 1)}),
        "tool_choice",
    ),
    # extra_body
    ("extra_body a string", lambda: req(extra_body="x"), "extra_body"),
    ("extra_body a list", lambda: req(extra_body=[("seed", 1)]), "extra_body"),
    ("extra_body with an int key", lambda: req(extra_body={1: "x"}), "extra_body"),
    (
        "extra_body holding a date",
        lambda: req(extra_body={"seed": datetime.date(2025, 1, 1)}),
        "extra_body.seed",
    ),
    ("extra_body holding a set", lambda: req(extra_body={"stop": {"a"}}), "extra_body.stop"),
    (
        "extra_body holding inf",
        lambda: req(extra_body={"temperature": float("inf")}),
        "extra_body.temperature",
    ),
]


def _circular() -> CompletionRequest:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return req(extra_body={"meta": loop})


BAD.append(("extra_body circular", _circular, "extra_body.meta"))


@pytest.mark.parametrize(("case", "make_request", "field"), BAD, ids=[b[0] for b in BAD])
async def test_bad_input_is_invalid_request_naming_the_field_before_any_io(
    case: str, make_request: Callable[[], CompletionRequest], field: str
) -> None:
    recorder = Recorder()
    provider = offline(recorder)
    request = make_request()
    attempts: list[Callable[[], object]] = [
        lambda: provider.build_request(request, stream=False),
        lambda: provider.build_request(request, stream=True),
        lambda: provider.complete(request),
        lambda: provider.stream(request),  # raises on the call, before iteration
        lambda: provider.astream(request),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidRequest) as info:
            attempt()
        err = info.value
        assert isinstance(err, LlmError)
        assert err.field == field, f"{case}: {err}"
        assert f"{field}: " in str(err), str(err)
        assert err.provider == "openai"
    with pytest.raises(InvalidRequest) as ainfo:
        await provider.acomplete(request)
    assert ainfo.value.field == field
    assert recorder.sent == []


def _uses_tools(request: CompletionRequest) -> bool:
    fields = (request.tools, request.tool_choice, request.parallel_tool_calls)
    try:
        messages = list(request.messages)
    except TypeError:
        messages = []
    return any(f is not None for f in fields) or any(
        getattr(m, "role", None) == "tool" or getattr(m, "tool_calls", None) for m in messages
    )


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_every_dialect_names_the_same_field(name: str) -> None:
    recorder = Recorder()
    provider = offline(recorder, name)
    can_call = provider.capabilities.tool_calling
    for case, make_request, field in BAD:
        request = make_request()
        with pytest.raises(InvalidRequest) as info:
            provider.build_request(request, stream=True)
        if not can_call and _uses_tools(request):
            # Refused for asking for tools at all (test_payload covers which field).
            assert "tool" in (info.value.field or ""), case
            continue
        assert info.value.field == field, case
        assert info.value.provider == name
    assert recorder.sent == []


# -- what is accepted, and sent whole ----------------------------------------------


def conversation() -> list[Message]:
    return [
        user("Weather in Paris?"),
        Message.assistant("Checking.", [ToolCall("c1", "get_weather", {"city": "Paris"})]),
        Message.tool_result("c1", "18C"),
        user("And Zürich?"),
    ]


def body_of(request: CompletionRequest, *, stream: bool = True) -> dict[str, Any]:
    recorder = Recorder()
    body = offline(recorder).build_request(request, stream=stream)
    assert recorder.sent == []
    return body


def test_a_generator_of_messages_is_sent_whole() -> None:
    expected = body_of(req(messages=conversation(), tools=[WEATHER]))
    assert len(expected["messages"]) == 4
    assert body_of(req(messages=(m for m in conversation()), tools=[WEATHER])) == expected
    assert body_of(req(messages=tuple(conversation()), tools=[WEATHER])) == expected


def test_generators_of_tools_stop_sequences_and_tool_calls_are_sent_whole() -> None:
    calls = [ToolCall("c1", "get_weather", {"city": "Paris"})]
    listed = req(
        messages=[user(), Message(role="assistant", tool_calls=calls)],
        tools=[WEATHER],
        stop_sequences=["END", "STOP"],
    )
    generated = req(
        messages=[user(), msg(role="assistant", tool_calls=iter(calls))],
        tools=iter([WEATHER]),
        stop_sequences=(s for s in ["END", "STOP"]),
    )
    expected = body_of(listed)
    assert expected["stop"] == ["END", "STOP"] and len(expected["tools"]) == 1
    assert body_of(generated) == expected


def test_a_request_with_generators_builds_once() -> None:
    """A generator can be read once: the same request object gives its body once."""

    def messages() -> Iterator[Message]:
        yield user()

    request = req(messages=messages())
    assert body_of(request)["messages"] == [{"role": "user", "content": "hi"}]
    with pytest.raises(InvalidRequest) as info:  # exhausted now: no message left
        body_of(request)
    assert info.value.field == "messages"


@pytest.mark.parametrize(
    "text", ['{"city":"Paris"}', '{"city": "Paris"}', ' {\n "city" : "Paris" } ']
)
def test_arguments_as_json_text_give_the_same_body_as_a_dict(text: str) -> None:
    def request(arguments: Any) -> CompletionRequest:
        return req(
            messages=[
                user(),
                Message.assistant(tool_calls=[ToolCall("c1", "get_weather", arguments)]),
                Message.tool_result("c1", "18C"),
            ],
            tools=[WEATHER],
        )

    as_dict = body_of(request({"city": "Paris"}))
    assert body_of(request(text)) == as_dict
    sent = as_dict["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(sent) == {"city": "Paris"}


def test_json_text_arguments_are_parsed_on_the_tool_call() -> None:
    call = tool_call("c1", "get_weather", '{"city": "Zürich"}')
    assert call.arguments == {"city": "Zürich"}
    assert call == ToolCall("c1", "get_weather", {"city": "Zürich"})
    # text that is no JSON object is kept as given, for build_payload to refuse
    kept: object = tool_call("c1", "f", "[1]").arguments
    assert kept == "[1]"


def test_read_only_mappings_are_accepted_as_plain_json() -> None:
    proxy_params = types.MappingProxyType(
        {
            "type": "object",
            "properties": types.MappingProxyType({"city": {"type": "string"}}),
            "required": ["city"],
        }
    )
    proxied = req(
        messages=[
            user(),
            Message.assistant(
                tool_calls=[
                    ToolCall("c1", "get_weather", types.MappingProxyType({"city": "Paris"}))
                ]
            ),
            Message.tool_result("c1", "18C"),
        ],
        tools=[ToolDefinition("get_weather", "Current weather for a city", proxy_params)],
        tool_choice=types.MappingProxyType(
            {"type": "function", "function": types.MappingProxyType({"name": "get_weather"})}
        ),
        extra_body=types.MappingProxyType({"metadata": types.MappingProxyType({"a": "b"})}),
    )
    plain = req(
        messages=[
            user(),
            Message.assistant(tool_calls=[ToolCall("c1", "get_weather", {"city": "Paris"})]),
            Message.tool_result("c1", "18C"),
        ],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        extra_body={"metadata": {"a": "b"}},
    )
    body = body_of(proxied)
    assert body == body_of(plain)
    json.dumps(body, allow_nan=False)  # plain JSON data all the way down
    assert type(body["tools"][0]["function"]["parameters"]) is dict


def test_parameters_without_a_type_are_accepted() -> None:
    body = body_of(req(tools=[ToolDefinition("f", "", {"properties": {}})]))
    assert body["tools"][0]["function"]["parameters"] == {"properties": {}}


@pytest.mark.parametrize("choice", ["auto", "none"])
def test_harmless_tool_choice_words_need_no_tools(choice: str) -> None:
    assert body_of(req(tool_choice=choice))["tool_choice"] == choice
    assert body_of(req(tools=[], tool_choice=choice))["tool_choice"] == choice


def test_optional_fields_given_as_none_or_empty_are_left_out() -> None:
    body = body_of(
        req(
            system="",
            stop_sequences=[],
            tools=[],
            extra_body={},
            messages=[user(), msg(role="assistant", tool_calls=None)],
        ),
        stream=False,
    )
    assert body["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": ""},
    ]
    assert not {"stop", "tools", "tool_choice"} & body.keys()


def test_count_tokens_takes_json_text_arguments() -> None:
    recorder = Recorder()
    provider = offline(recorder)
    as_text = req(
        messages=[user(), Message.assistant(tool_calls=[tool_call("c1", "f", '{"a": 1}')])]
    )
    as_dict = req(messages=[user(), Message.assistant(tool_calls=[ToolCall("c1", "f", {"a": 1})])])
    assert provider.count_tokens(as_text) == provider.count_tokens(as_dict)


def test_the_final_body_check_names_the_request_field() -> None:
    """The last line of defence, behind the per-field checks: the whole body must
    be strict JSON, and the error names the request field behind the bad key."""
    from provider_impl.payload import _check_body

    dialect = offline(Recorder()).dialect
    day = datetime.date(2025, 1, 1)
    request = req(extra_body={"seed": 1})
    cases = {
        "stop": "stop_sequences",
        dialect.max_tokens_param: "max_tokens",
        "tools": "tools",
        "seed": "extra_body.seed",
    }
    for key, field in cases.items():
        with pytest.raises(InvalidRequest) as info:
            _check_body({"model": "m", key: [day]}, request, dialect)
        assert info.value.field == field
    _check_body({"model": "m", "messages": []}, request, dialect)  # fine: no error
