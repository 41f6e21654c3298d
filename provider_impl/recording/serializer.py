"""A readable YAML cassette format for vcrpy, byte-exact on the way back.

vcrpy hands a serializer a dict of interactions (request: method, uri, headers,
body; response: status, headers, body.string). This one writes:

* request bodies that are JSON in the provider's own encoding as a parsed
  mapping under ``parsed_body:`` (deserialized by re-encoding them exactly as
  ``OpenAiCompatibleProvider._encode`` does);
* text bodies (SSE streams, JSON error bodies) as YAML literal block text
  (``string: |``), one wire line per YAML line;
* text that a literal block cannot carry exactly (a ``\\r``, a tab, U+0085,
  U+2028/U+2029, a BOM, a control character, or a line ending in a space) as a
  list of lines under ``lines:`` (joined with ``\\n``), each line quoted and
  escaped as YAML requires;
* anything else (bytes that are not UTF-8) as ``!!binary``.

Every cassette is loaded back right after it is dumped and compared with the
input; a body that did not survive is demoted to the next, safer form, so the
written text always deserializes to exactly the recorded bytes.

This module is a vcrpy serializer (``serialize``/``deserialize`` at module
level) under the name ``provider-impl``: ``register(my_vcr)`` (or
``my_vcr.register_serializer("provider-impl", this_module)``) and then
``my_vcr.use_cassette(path, serializer="provider-impl")`` plays a shipped
cassette in plain vcrpy; with pytest-recording the plugin registers it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

__all__ = [
    "SERIALIZER",
    "SERIALIZER_NAME",
    "CassetteSerializer",
    "block_safe",
    "deserialize",
    "encode_json_body",
    "register",
    "serialize",
]

SERIALIZER_NAME = "provider-impl"

try:  # the C loader when libyaml is there; it parses what the Python dumper writes
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader

# Characters a literal block keeps as they are: LF, printable ASCII and printable
# non-ASCII, minus the ones YAML 1.1 reads as line breaks (U+0085, U+2028,
# U+2029) and the BOM. A line may not end in a space (PyYAML will not emit
# trailing spaces in a block scalar).
_BLOCK_UNSAFE = re.compile(
    "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]| \n| $"
)
_LINE_UNSAFE = re.compile(
    "[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)

# The forms a body can take on disk, most readable first.
_PARSED, _BLOCK, _LINES, _BINARY = "parsed", "block", "lines", "binary"
_FORMS = (_PARSED, _BLOCK, _LINES, _BINARY)


def encode_json_body(body: Any) -> bytes:
    """The provider's request encoding (``OpenAiCompatibleProvider._encode``)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def block_safe(text: str) -> bool:
    """Whether ``text`` survives a YAML literal block unchanged."""
    return _BLOCK_UNSAFE.search(text) is None


class _Block(str):
    """A string to emit in literal block style."""


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_block(dumper: yaml.SafeDumper, data: _Block) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="|")


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # PyYAML may write U+0085, U+2028 or U+2029 raw in a plain or single-quoted
    # scalar, where the loader reads them as line breaks: escape such strings.
    if _LINE_UNSAFE.search(data):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_str(data)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_Block, _represent_block)


def _to_bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", errors="surrogatepass")
    raise TypeError(f"cannot store a body of type {type(value).__name__}")


def _as_text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _parsed_json(data: bytes) -> Any:
    """The body parsed, if re-encoding it gives back exactly ``data``; else None."""
    text = _as_text(data)
    if text is None or text[:1] not in ("{", "["):
        return None
    try:
        parsed = json.loads(text)
        if encode_json_body(parsed) == data:
            return parsed
    except (ValueError, RecursionError, UnicodeEncodeError):
        pass
    return None


def _eligible(form: str, data: bytes) -> bool:
    if form == _BINARY:
        return True
    text = _as_text(data)
    if text is None:
        return False
    if form == _PARSED:
        return _parsed_json(data) is not None
    if form == _BLOCK:
        return text != "" and block_safe(text)
    return True  # lines: any text


def _first_form(data: bytes | None, start: int, allow_parsed: bool) -> int:
    if data is None:
        return len(_FORMS) - 1
    for i in range(start, len(_FORMS)):
        if _FORMS[i] == _PARSED and not allow_parsed:
            continue
        if _eligible(_FORMS[i], data):
            return i
    return len(_FORMS) - 1


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _encode_body(data: bytes, form: str) -> tuple[str, Any]:
    """The (key, value) pair that stores ``data`` in ``form``."""
    if form == _PARSED:
        return "parsed", _parsed_json(data)
    if form == _BINARY:
        return "binary", data
    text = data.decode("utf-8")
    if form == _BLOCK:
        return "block", _Block(text)
    return "lines", _lines(text)


def _decode_body(kind: str, value: Any) -> bytes:
    if kind == "parsed":
        return encode_json_body(value)
    if kind == "lines":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("a lines: body must be a list of strings")
        return "\n".join(value).encode("utf-8")
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ValueError(f"unexpected body value of type {type(value).__name__}")


def _request_doc(request: Mapping[str, Any], form: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"method": request["method"], "uri": request["uri"]}
    doc["headers"] = request.get("headers", {})
    data = _to_bytes(request.get("body"))
    if data is None:
        doc["body"] = None
        return doc
    kind, value = _encode_body(data, _FORMS[form])
    key = {"parsed": "parsed_body", "lines": "body_lines"}.get(kind, "body")
    doc[key] = value
    return doc


def _response_doc(response: Mapping[str, Any], form: int) -> dict[str, Any]:
    doc: dict[str, Any] = {
        k: v for k, v in response.items() if k != "body"
    }  # status, headers, anything else
    body = response.get("body")
    data = _to_bytes(body.get("string") if isinstance(body, Mapping) else body)
    if data is None:
        doc["body"] = {"string": None}
        return doc
    kind, value = _encode_body(data, _FORMS[form])
    doc["body"] = {"lines" if kind == "lines" else "string": value}
    return doc


def _read_request(doc: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "method": doc["method"],
        "uri": doc["uri"],
        "headers": doc.get("headers") or {},
    }
    if "parsed_body" in doc:
        out["body"] = _decode_body("parsed", doc["parsed_body"])
    elif "body_lines" in doc:
        out["body"] = _decode_body("lines", doc["body_lines"])
    else:
        body = doc.get("body")
        out["body"] = None if body is None else _decode_body("string", body)
    return out


def _read_response(doc: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k != "body"}
    body = doc.get("body")
    if not isinstance(body, Mapping):
        raise ValueError("a response body must be a mapping with string: or lines:")
    if "lines" in body:
        out["body"] = {"string": _decode_body("lines", body["lines"])}
    else:
        value = body.get("string")
        out["body"] = {"string": None if value is None else _decode_body("string", value)}
    return out


def _normalized(cassette: Mapping[str, Any]) -> dict[str, Any]:
    """The input with every body as bytes: what deserializing must give back."""
    interactions = []
    for it in cassette.get("interactions", []):
        req = dict(it["request"])
        req["body"] = _to_bytes(req.get("body"))
        req.setdefault("headers", {})
        resp = dict(it["response"])
        body = resp.get("body")
        raw = body.get("string") if isinstance(body, Mapping) else body
        resp["body"] = {"string": _to_bytes(raw)}
        interactions.append({"request": req, "response": resp})
    out = {k: v for k, v in cassette.items() if k != "interactions"}
    out["interactions"] = interactions
    return out


def _dump(doc: Any) -> str:
    return yaml.dump(
        doc,
        Dumper=_Dumper,
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=False,
        width=1 << 30,
    )


def _document(cassette: Mapping[str, Any], forms: list[tuple[int, int]]) -> dict[str, Any]:
    doc: dict[str, Any] = {"version": cassette.get("version", 1)}
    # Other top-level keys (the provenance block) come before the interactions,
    # where a reader sees them first.
    for key, value in cassette.items():
        if key not in ("version", "interactions"):
            doc[key] = value
    doc["interactions"] = [
        {"request": _request_doc(it["request"], rf), "response": _response_doc(it["response"], sf)}
        for it, (rf, sf) in zip(cassette["interactions"], forms, strict=True)
    ]
    return doc


def serialize(cassette: Mapping[str, Any]) -> str:
    """The cassette as readable YAML that :func:`deserialize` turns back exactly."""
    want = _normalized(cassette)
    its = want["interactions"]
    forms = [
        (
            _first_form(it["request"]["body"], 0, allow_parsed=True),
            _first_form(it["response"]["body"]["string"], 1, allow_parsed=False),
        )
        for it in its
    ]
    last = len(_FORMS) - 1
    for _ in range(len(_FORMS) + 1):
        text = _dump(_document(want, forms))
        try:
            got = deserialize(text)
        except (yaml.YAMLError, ValueError, KeyError, TypeError):
            got = None
        if got == want:
            return text
        # Demote every body that did not come back exactly (all of them if the
        # text did not even load) and try again.
        changed = False
        for i, (rf, sf) in enumerate(forms):
            got_it = got["interactions"][i] if got is not None else None
            req_ok = got_it is not None and got_it["request"]["body"] == its[i]["request"]["body"]
            resp_ok = (
                got_it is not None and got_it["response"]["body"] == its[i]["response"]["body"]
            )
            if not req_ok:
                rf = _first_form(its[i]["request"]["body"], min(rf + 1, last), True)
            if not resp_ok:
                sf = _first_form(its[i]["response"]["body"]["string"], min(sf + 1, last), False)
            changed |= (rf, sf) != forms[i]
            forms[i] = (rf, sf)
        if not changed:
            break
    raise ValueError("the cassette cannot be written as YAML that reads back identically")


#: The largest cassette text read (characters); the biggest shipped one is far smaller.
MAX_CASSETTE_CHARS = 64 * 1024 * 1024


def _load(text: str) -> Any:
    """``yaml.load`` that refuses anchors and aliases (this serializer never writes
    them; a "billion laughs" document would expand to gigabytes) and oversized text."""
    if len(text) > MAX_CASSETTE_CHARS:
        raise ValueError(
            f"the cassette is {len(text):,} characters, more than {MAX_CASSETTE_CHARS:,}"
        )
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        seen: set[int] = set()
        todo: list[yaml.Node] = [node]
        while todo:  # each node object once: an alias is a node met twice
            current = todo.pop()
            if id(current) in seen:
                mark = current.start_mark
                raise ValueError(
                    f"the cassette uses a YAML alias (line {mark.line + 1}); "
                    "cassettes never need one"
                )
            seen.add(id(current))
            if isinstance(current, yaml.MappingNode):
                for key, value in current.value:
                    todo += (key, value)
            elif isinstance(current, yaml.SequenceNode):
                todo += current.value
        return loader.construct_document(node)
    finally:
        loader.dispose()


def deserialize(text: str) -> dict[str, Any]:
    """The vcrpy cassette dict, every body as the exact recorded bytes."""
    doc = _load(text)
    if not isinstance(doc, Mapping) or not isinstance(doc.get("interactions"), list):
        raise ValueError("not a provider_impl cassette: no interactions list")
    out = {k: v for k, v in doc.items() if k != "interactions"}
    out["interactions"] = [
        {"request": _read_request(it["request"]), "response": _read_response(it["response"])}
        for it in doc["interactions"]
    ]
    return out


class CassetteSerializer:
    """The object vcrpy registers: ``serialize(dict) -> str``, ``deserialize(str) -> dict``."""

    name = SERIALIZER_NAME

    @staticmethod
    def serialize(cassette_dict: Mapping[str, Any]) -> str:
        return serialize(cassette_dict)

    @staticmethod
    def deserialize(cassette_string: str) -> dict[str, Any]:
        return deserialize(cassette_string)


SERIALIZER = CassetteSerializer()


def register(recorder: Any) -> Any:
    """Register this serializer on a ``vcr.VCR`` as ``"provider-impl"``; returns it."""
    recorder.register_serializer(SERIALIZER_NAME, SERIALIZER)
    return recorder
