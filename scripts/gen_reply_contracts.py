"""Generate the reply contracts in provider_impl/schemas/replies/ from real traffic.

For each provider, every 2xx reply under ``cassettes/real/<provider>/`` is
split into its objects (stream chunks, whole ``chat.completion`` replies and
in-band error frames, see ``provider_impl.schemas.replies.reply_objects``),
and genson infers a schema from them. Where a provider has too few real
samples (no streams for Mistral or GLM in the repository, no real traffic at
all for the Claude subscription proxy), a few documented facts are added as
example objects; each says where it comes from. The inferred schema is then
curated by the rules below, which are the review of the generated files:

* the structure a client reads (choices, delta/message, tool calls, function,
  content parts, usage and its details) keeps its detail; any other field is
  reduced to its JSON type(s), so vendor extras are typed but not pinned;
* ``required`` keeps only core fields (ids, object, created, model, choices,
  usage, index, finish_reason, role, tool-call id/type/function, token
  counts), and only those that every sample has;
* unknown properties stay allowed everywhere;
* ``OVERRIDES`` pin the facts the data shows and the docs state: the
  ``object`` value, id shapes, documented finish reasons, and the types of
  fields only ever seen as ``null``.

Every sample is validated against the result before anything is written.

Usage (from the repository root):
    python scripts/gen_reply_contracts.py          # rewrite the files
    python scripts/gen_reply_contracts.py --check  # exit 1 if a file is stale
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from genson import SchemaBuilder
from jsonschema import Draft202012Validator

from provider_impl.harness import load_exchange
from provider_impl.schemas.replies import REPLY_CONTRACTS, reply_objects

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "cassettes" / "real"
OUT = ROOT / "provider_impl" / "schemas" / "replies"
KINDS = ("chunk", "completion")
JSON = Any

# Paths (dotted, ``[]`` for array items, "" for the top) whose fields keep detail.
_MESSAGE_DETAIL = (
    "{m}",
    "{m}.tool_calls",
    "{m}.tool_calls[]",
    "{m}.tool_calls[].function",
    # Mistral's content parts: [{"type": "thinking", "thinking": [{"type", "text"}]}, ...]
    "{m}.content",
    "{m}.content[]",
    "{m}.content[].thinking",
    "{m}.content[].thinking[]",
    # Gemini's thought flag and signature.
    "{m}.extra_content",
    "{m}.extra_content.google",
)
KEEP_DETAIL = frozenset(
    ["", "choices", "choices[]", "usage"]
    + ["usage.prompt_tokens_details", "usage.completion_tokens_details"]
    + [p.format(m=m) for m in ("choices[].delta", "choices[].message") for p in _MESSAGE_DETAIL]
)

_TOOL_CALL_REQUIRED = frozenset({"id", "type", "function", "index"})
REQUIRED_CANDIDATES: dict[str, frozenset[str]] = {
    "": frozenset({"id", "object", "created", "model", "choices", "usage"}),
    "choices[]": frozenset({"index", "delta", "message", "finish_reason"}),
    "choices[].message": frozenset({"role"}),
    "choices[].delta.tool_calls[]": _TOOL_CALL_REQUIRED,
    "choices[].message.tool_calls[]": _TOOL_CALL_REQUIRED,
    "choices[].delta.tool_calls[].function": frozenset({"name", "arguments"}),
    "choices[].message.tool_calls[].function": frozenset({"name", "arguments"}),
    "choices[].delta.content[]": frozenset({"type"}),
    "choices[].message.content[]": frozenset({"type"}),
    "usage": frozenset({"prompt_tokens", "completion_tokens", "total_tokens"}),
    "usage.prompt_tokens_details": frozenset({"cached_tokens"}),
    "usage.completion_tokens_details": frozenset({"reasoning_tokens"}),
}

_NULLABLE_STRING = {"type": ["string", "null"]}
# Fields every OpenAI-style reply may carry that the samples only show as null.
_COMMON_TYPES: dict[str, JSON] = {
    "choices[].logprobs": {"type": ["object", "null"]},
    "choices[].message.refusal": _NULLABLE_STRING,
    "choices[].delta.refusal": _NULLABLE_STRING,
    "choices[].message.content": {"type": ["string", "array", "null"]},
    "choices[].delta.content": {"type": ["string", "array", "null"]},
    "system_fingerprint": _NULLABLE_STRING,
    "service_tier": _NULLABLE_STRING,
}


def _finish(values: Iterable[str], chunk: bool) -> JSON:
    allowed: list[str | None] = sorted(values)
    return {"enum": [*allowed, None]} if chunk else {"enum": allowed}


# Documented finish reasons (docs/ARCHITECTURE.md, "Where the facts come from"): OpenAI's
# API reference; Mistral's and Z.ai's chat-completion references; the proxy's own
# OpenAIChatChunkChoice type.
FINISH_REASONS: dict[str, tuple[str, ...]] = {
    "openai": ("stop", "length", "tool_calls", "content_filter", "function_call"),
    "mistral": ("stop", "length", "model_length", "error", "tool_calls"),
    "glm": ("stop", "length", "tool_calls", "sensitive", "network_error"),
}

# Per provider and kind: path -> schema keywords merged into the generated node.
OVERRIDES: dict[str, dict[str, dict[str, JSON]]] = {
    "openai": {
        "chunk": {
            "id": {"pattern": "^chatcmpl-"},
            "choices[].delta.tool_calls[].id": {"pattern": "^call_"},
        },
        "completion": {
            "id": {"pattern": "^chatcmpl-"},
            "choices[].message.tool_calls[].id": {"pattern": "^call_"},
        },
    },
    "gemini": {
        # Streamed chunks carry no id; a whole reply does (Google's response id).
        "chunk": {},
        # A whole reply that calls tools says "tool_calls"; a stream says "stop"
        # (python-genai issue 2868; the samples agree).
        "completion": {
            "choices[]": {
                "if": {
                    "required": ["message"],
                    "properties": {
                        "message": {
                            "required": ["tool_calls"],
                            "properties": {"tool_calls": {"type": "array", "minItems": 1}},
                        }
                    },
                },
                "then": {"properties": {"finish_reason": {"const": "tool_calls"}}},
            }
        },
    },
    "mistral": {
        "chunk": {
            "id": {"pattern": "^[0-9a-f]{32}$"},
            "choices[].delta.tool_calls[].id": {"pattern": "^[A-Za-z0-9]{9}$"},
        },
        "completion": {
            "id": {"pattern": "^[0-9a-f]{32}$"},
            "choices[].message.tool_calls[].id": {"pattern": "^[A-Za-z0-9]{9}$"},
        },
    },
    "glm": {
        # A Beijing-time timestamp (yyyyMMddHHmmss), then hex.
        "chunk": {
            "id": {"pattern": "^[0-9]{14}[0-9a-f]+$"},
            "choices[].delta.tool_calls[].id": {"pattern": "^call_[0-9a-f]+$"},
        },
        "completion": {
            "id": {"pattern": "^[0-9]{14}[0-9a-f]+$"},
            "request_id": {"type": "string"},
            # Whole replies number their tool calls with a signed 64-bit integer.
            "choices[].message.tool_calls[].id": {"pattern": "^call_-?[0-9]+$"},
        },
    },
    "claude_subscription": {
        # ids are "chatcmpl-" + the first 24 hex digits of a v4 UUID (routes.js).
        "chunk": {
            "id": {"pattern": "^chatcmpl-[0-9a-f]{24}$"},
            "choices[].delta.role": {"const": "assistant"},
        },
        "completion": {
            "id": {"pattern": "^chatcmpl-[0-9a-f]{24}$"},
            "choices[].message.role": {"const": "assistant"},
        },
    },
    "openrouter": {"chunk": {}, "completion": {}},
}
for _provider, _reasons in FINISH_REASONS.items():
    OVERRIDES[_provider]["chunk"]["choices[].finish_reason"] = _finish(_reasons, chunk=True)
    OVERRIDES[_provider]["completion"]["choices[].finish_reason"] = _finish(_reasons, False)

# Documented facts for providers with too few real samples in the repository.
# Each is a minimal object of the documented shape, written for this project.
FACTS: dict[str, dict[str, list[JSON]]] = {
    # Gemini's OpenAI compatibility layer answers a text prompt with
    # message.content (Google's "OpenAI compatibility" guide).
    "gemini": {
        "completion": [
            {
                "choices": [
                    {
                        "finish_reason": "stop",
                        "index": 0,
                        "message": {"content": "Hello.", "role": "assistant"},
                    }
                ],
                "created": 1767225600,
                "id": "AAAAAAAAAAAAAAAAAAAAAA",
                "model": "gemini-2.5-flash",
                "object": "chat.completion",
                "usage": {"completion_tokens": 2, "prompt_tokens": 3, "total_tokens": 5},
            }
        ]
    },
    # Mistral streams (its chat-completion reference; docs/ARCHITECTURE.md): the first chunk
    # has role and empty content, text comes as content strings or thinking
    # parts, tool calls whole without index/type, usage on the last chunk.
    "mistral": {
        "chunk": [
            {
                "id": "0123456789abcdef0123456789abcdef",
                "object": "chat.completion.chunk",
                "created": 1767225600,
                "model": "mistral-large-latest",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "finish_reason": None,
                    }
                ],
            },
            {
                "id": "0123456789abcdef0123456789abcdef",
                "object": "chat.completion.chunk",
                "created": 1767225600,
                "model": "magistral-medium-latest",
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "content": [
                                {"type": "thinking", "thinking": [{"type": "text", "text": "Hm"}]}
                            ]
                        },
                        "finish_reason": None,
                    }
                ],
            },
            {
                "id": "0123456789abcdef0123456789abcdef",
                "object": "chat.completion.chunk",
                "created": 1767225600,
                "model": "mistral-large-latest",
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "id": "abcDEF123",
                                    "function": {"name": "get_weather", "arguments": "{}"},
                                }
                            ]
                        },
                        "finish_reason": "tool_calls",
                    }
                ],
                "usage": {"prompt_tokens": 9, "total_tokens": 19, "completion_tokens": 10},
            },
        ]
    },
    # GLM streams (Z.ai's chat-completion reference; docs/ARCHITECTURE.md): every delta has
    # role, reasoning in reasoning_content, finish_reason only on the last
    # choice chunk, which carries usage with cached and reasoning details.
    "glm": {
        "chunk": [
            {
                "id": "2026010108000000112233445566aabb",
                "created": 1767225600,
                "object": "chat.completion.chunk",
                "model": "glm-4.7",
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "reasoning_content": "Hm"}}
                ],
            },
            {
                "id": "2026010108000000112233445566aabb",
                "created": 1767225600,
                "object": "chat.completion.chunk",
                "model": "glm-4.7",
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "role": "assistant",
                            "tool_calls": [
                                {
                                    "id": "call_0123456789abcdef01234567",
                                    "index": 0,
                                    "type": "function",
                                    "function": {"name": "get_weather", "arguments": "{}"},
                                }
                            ],
                        },
                    }
                ],
            },
            {
                "id": "2026010108000000112233445566aabb",
                "created": 1767225600,
                "object": "chat.completion.chunk",
                "model": "glm-4.7",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "delta": {"role": "assistant", "content": ""},
                    }
                ],
                "usage": {
                    "prompt_tokens": 9,
                    "completion_tokens": 10,
                    "total_tokens": 19,
                    "prompt_tokens_details": {"cached_tokens": 0},
                    "completion_tokens_details": {"reasoning_tokens": 4},
                },
            },
        ]
    },
    # The claude-max-api-proxy 1.0.0 writes exactly these shapes
    # (dist/server/routes.js, dist/adapter/cli-to-openai.js): content chunks
    # with role only on the first, a final chunk with an empty delta and
    # "stop", no usage in streams; a whole reply with role/content, "stop" and
    # three token counts.
    "claude_subscription": {
        "chunk": [
            {
                "id": "chatcmpl-0123456789abcdef01234567",
                "object": "chat.completion.chunk",
                "created": 1767225600,
                "model": "claude-sonnet-4",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": "Hel"},
                        "finish_reason": None,
                    }
                ],
            },
            {
                "id": "chatcmpl-0123456789abcdef01234567",
                "object": "chat.completion.chunk",
                "created": 1767225600,
                "model": "claude-sonnet-4-5-20250929",
                "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": None}],
            },
            {
                "id": "chatcmpl-0123456789abcdef01234567",
                "object": "chat.completion.chunk",
                "created": 1767225600,
                "model": "claude-sonnet-4",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            },
        ],
        "completion": [
            {
                "id": "chatcmpl-0123456789abcdef01234567",
                "object": "chat.completion",
                "created": 1767225600,
                "model": "claude-sonnet-4",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Hello."},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            }
        ],
    },
}

DESCRIPTIONS: dict[str, str] = {
    "openai": "OpenAI chat completions",
    "gemini": "Gemini's OpenAI compatibility layer",
    "mistral": "Mistral chat completions",
    "glm": "GLM (Z.ai / BigModel) chat completions",
    "claude_subscription": "the claude-max-api-proxy 1.0.0 in front of the Claude Code CLI",
    "openrouter": "OpenRouter, an OpenAI-compatible gateway to many models",
}

# The in-band error frame: {"error": {...}} (OpenAI style, the Claude proxy,
# OpenRouter with the chunk's other fields around it) or Google's array of them.
ERROR_SCHEMA: JSON = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "In-band stream error frame",
    "description": "One SSE data payload that reports an error instead of a chunk.",
    "$comment": "Generated by scripts/gen_reply_contracts.py; edit that script, not this file.",
    "anyOf": [
        {"$ref": "#/$defs/frame"},
        {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/frame"}},
    ],
    "$defs": {
        "frame": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {
                        "message": {"type": "string"},
                        "type": {"type": ["string", "null"]},
                        "code": {"type": ["string", "integer", "null"]},
                        "param": {"type": ["string", "null"]},
                        "status": {"type": "string"},
                    },
                }
            },
        }
    },
}


# ----------------------------------------------------------------- collecting


def real_samples(provider: str, real_dir: Path = REAL) -> dict[str, list[JSON]]:
    """Every object of every 2xx reply under ``real_dir/provider``, by kind."""
    out: dict[str, list[JSON]] = {"chunk": [], "completion": [], "error": []}
    folder = real_dir / provider
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.yaml")):
        exchange = load_exchange(path)
        if not 200 <= exchange.status < 300:
            continue
        for kind, obj in reply_objects(exchange.body, sse=exchange.is_sse):
            out[kind].append(obj)
    return out


# ------------------------------------------------------------------- curating


def _types(node: JSON) -> list[str]:
    if "anyOf" in node:
        return sorted({t for branch in node["anyOf"] for t in _types(branch)})
    t = node.get("type", [])
    return sorted([t] if isinstance(t, str) else t)


def _collapse(node: JSON) -> JSON:
    types = _types(node)
    return {"type": types[0] if len(types) == 1 else types} if types else {}


def _curate(node: JSON, path: str) -> JSON:
    if "anyOf" in node:
        branches = [_curate(b, path) for b in node["anyOf"]]
        return {"anyOf": branches}
    out: JSON = {k: v for k, v in node.items() if k not in ("properties", "required", "items")}
    if "properties" in node:
        props: JSON = {}
        for key, child in node["properties"].items():
            child_path = f"{path}.{key}" if path else key
            props[key] = (
                _curate(child, child_path) if child_path in KEEP_DETAIL else _collapse(child)
            )
            if child_path in _COMMON_TYPES and _types(props[key]) in (["null"], []):
                props[key] = copy.deepcopy(_COMMON_TYPES[child_path])
        out["properties"] = props
        required = sorted(set(node.get("required", [])) & REQUIRED_CANDIDATES.get(path, set()))
        if required:
            out["required"] = required
    if "items" in node:
        item_path = f"{path}[]"
        out["items"] = (
            _curate(node["items"], item_path)
            if item_path in KEEP_DETAIL
            else _collapse(node["items"])
        )
    return out


def _node(schema: JSON, path: str) -> list[JSON]:
    """The schema nodes (several under an anyOf) that describe ``path``."""
    nodes = [schema]
    for part in path.split("."):
        key, arrays = part.rstrip("[]"), part.count("[]")
        found: list[JSON] = []
        for node in nodes:
            for branch in node.get("anyOf", [node]):
                child = branch.get("properties", {}).get(key)
                if child is not None:
                    found.append(child)
        for _ in range(arrays):
            found = [b["items"] for n in found for b in n.get("anyOf", [n]) if "items" in b]
        nodes = found
    return nodes


def build_schema(provider: str, kind: str, samples: list[JSON]) -> JSON:
    builder = SchemaBuilder(schema_uri=None)
    for obj in samples:
        builder.add_object(obj)
    schema = _curate(builder.to_schema(), "")
    schema["properties"]["object"] = {
        "const": "chat.completion.chunk" if kind == "chunk" else "chat.completion"
    }
    for path, keywords in OVERRIDES[provider][kind].items():
        nodes = _node(schema, path)
        if not nodes:
            # A documented field the samples lack: add it to its parent.
            parent, _, key = path.rpartition(".")
            for holder in _node(schema, parent) if parent else [schema]:
                for branch in holder.get("anyOf", [holder]):
                    if branch.get("type") == "object":
                        branch.setdefault("properties", {})[key] = copy.deepcopy(keywords)
            continue
        for node in nodes:
            node.update(copy.deepcopy(keywords))
    what = "one streamed chat.completion.chunk" if kind == "chunk" else "a whole chat.completion"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{provider} reply contract: {kind}",
        "description": f"{what} from {DESCRIPTIONS[provider]}.",
        "$comment": "Generated by scripts/gen_reply_contracts.py; edit that script, not this file.",
        **schema,
    }


def generate(real_dir: Path = REAL) -> dict[str, JSON]:
    """File name -> schema for every contract; raises if a sample does not fit."""
    files: dict[str, JSON] = {"error.chunk.json": ERROR_SCHEMA}
    problems: list[str] = []
    errors_seen: list[JSON] = []
    for provider in REPLY_CONTRACTS:
        real = real_samples(provider, real_dir)
        errors_seen.extend(real["error"])
        for kind in KINDS:
            samples = real[kind] + FACTS.get(provider, {}).get(kind, [])
            if not samples:
                raise SystemExit(f"no samples for {provider} {kind}: add real traffic or facts")
            schema = build_schema(provider, kind, samples)
            validator = Draft202012Validator(schema)
            for i, obj in enumerate(samples):
                for err in validator.iter_errors(obj):
                    problems.append(f"{provider} {kind} #{i}: {err.json_path}: {err.message}")
            files[f"{provider}.{kind}.json"] = schema
    error_validator = Draft202012Validator(ERROR_SCHEMA)
    for obj in errors_seen:
        problems.extend(f"error frame: {e.message}" for e in error_validator.iter_errors(obj))
    if problems:
        raise SystemExit("samples that do not fit their contract:\n" + "\n".join(problems))
    return files


def render(schema: JSON) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a committed file is stale")
    parser.add_argument("--real-dir", type=Path, default=REAL, help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", type=Path, default=OUT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    files = generate(args.real_dir)
    stale = []
    for name, schema in files.items():
        path = args.out_dir / name
        text = render(schema)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print("stale reply contracts (run scripts/gen_reply_contracts.py):", *stale, sep="\n  ")
        return 1
    if not args.check:
        print(f"wrote {len(files)} files to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
