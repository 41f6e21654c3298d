"""Turn a folder of real recorded exchanges into project cassettes with provenance.

Input: one JSON file per exchange, grouped by provider folder, each holding
``provenance`` (repo, commit, path, interaction), ``request`` (method, url,
body) and ``response`` (status, content_type, body as text). Output:
``<dest>/<provider>/<file stem>.yaml`` in the project's cassette format
(``provider_impl.recording.serializer``), with the provenance kept as a
top-level ``provenance:`` block. See docs/PROVENANCE.md.

Usage: python scripts/import_real_traffic.py SOURCE_DIR [DEST_DIR]
"""

from __future__ import annotations

import json
import sys
from http import HTTPStatus
from pathlib import Path
from typing import Any

from provider_impl.recording.config import write_atomically
from provider_impl.recording.secrets import find_secrets
from provider_impl.recording.serializer import encode_json_body, serialize


def cassette_for(exchange: dict[str, Any]) -> dict[str, Any]:
    req, resp = exchange["request"], exchange["response"]
    status = int(resp["status"])
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    body = encode_json_body(req["body"])
    prov = exchange["provenance"]
    return {
        "version": 1,
        "provenance": {
            "source": "real-traffic",
            "repo": prov["repo"],
            "commit": prov["commit"],
            "path": prov["path"],
            "interaction": prov["interaction"],
        },
        "interactions": [
            {
                "request": {
                    "method": req["method"],
                    "uri": req["url"],
                    "headers": {"content-type": ["application/json"]},
                    "body": body,
                },
                "response": {
                    "status": {"code": status, "message": reason},
                    "headers": {"content-type": [resp["content_type"]]},
                    "body": {"string": resp["body"].encode("utf-8")},
                },
            }
        ],
    }


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    source = Path(argv[0])
    dest = Path(argv[1]) if len(argv) > 1 else Path("cassettes/real")
    count = 0
    for path in sorted(source.glob("*/*.json")):
        exchange = json.loads(path.read_text(encoding="utf-8"))
        text = serialize(cassette_for(exchange))
        findings = find_secrets(text)
        if findings:
            print(f"{path}: secret-shaped text, not imported: {findings}", file=sys.stderr)
            return 1
        out = dest / exchange["provider"] / f"{path.stem}.yaml"
        write_atomically(out, text.encode("utf-8"))
        count += 1
    print(f"imported {count} exchange(s) into {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
