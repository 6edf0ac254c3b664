"""The proxy's answers, byte for byte, pinned in ``golden/responses.json``.

Moving code must not change a byte that spiff-arena (or a person) sees: the catalog, the auths,
the status, the OpenAPI document and a set of ``/v1/do`` calls covering every outcome kind. After
an intended change to an answer, regenerate the file with ``GOLDEN_UPDATE=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from conftest import ProxyFactory

GOLDEN = Path(__file__).parent / "golden" / "responses.json"

# (method, path, JSON body or raw bytes); every answer is deterministic (no time, port or uuid in it).
REQUESTS: list[tuple[str, str, Any]] = [
    ("GET", "/v1/commands", None),
    ("GET", "/v1/auths", None),
    ("GET", "/v1/liveness", None),
    ("GET", "/liveness", None),
    ("GET", "/v1/readiness", None),
    ("GET", "/openapi.json", None),
    ("POST", "/v1/do/example/Echo", {"message": "hi", "note": None, "spiff__task_data": {"a": 1}}),
    ("POST", "/v1/do/example/Echo", {"message": "hi", "spiff__future_key": 1}),
    ("POST", "/v1/do/example/Echo", {"note": "no message"}),
    ("POST", "/v1/do/example/Echo", {"message": "x", "surprise": 1}),
    ("POST", "/v1/do/example/MinimalV2", {}),
    ("POST", "/v1/do/example/LegacyJson", {}),
    ("POST", "/v1/do/example/LegacyText", {}),
    ("POST", "/v1/do/example/AcceptsAnything", {"a": [1, 2], "b": {"c": None}}),
    ("POST", "/v1/do/failing/Explode", {}),
    ("POST", "/v1/do/failing/Explode", {"password": "hunter2-secret"}),
    ("POST", "/v1/do/example/LegacyJson", {"value": {"k": [1, "two"]}}),
    ("POST", "/v1/do/example/LegacyText", {"text": "plain words"}),
    ("POST", "/v1/do/failing/NotAMapping", {}),
    ("POST", "/v1/do/failing/NotSerialisable", {}),
    ("POST", "/v1/do/nope/Missing", {}),
    ("POST", "/v1/do/example/Echo", b"[1, 2]"),
    ("POST", "/v1/do/example/Echo", b"{not json"),
    ("POST", "/v1/do/too/many/parts", {}),
    ("POST", "/v1/do/onlyone", {}),
    ("POST", "/v1/do/http/GetRequestV2", {}),
    ("POST", "/v1/do/http/GetRequestV2", {"url": "ftp://example.invalid/x"}),
    ("POST", "/v1/do/http/GetRequestV2", {"url": "http://127.0.0.1:1/nothing-listens-here"}),
    ("POST", "/v1/do/http/PostRequestV2", {"url": "http://127.0.0.1:1/", "data": {"a": 1}, "attempts": "x"}),
]


def _answers(base_url: str) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    with httpx.Client(base_url=base_url, timeout=30) as http:
        for method, path, body in REQUESTS:
            content = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
            headers = {"content-type": "application/json"} if content is not None else {}
            answer = http.request(method, path, content=content, headers=headers)
            kept = {
                k: answer.headers[k] for k in ("content-type", "etag", "cache-control", "vary") if k in answer.headers
            }
            answers.append(
                {
                    "request": f"{method} {path} {content!r}",
                    "status": answer.status_code,
                    "headers": kept,
                    "body": answer.text,
                }
            )
    return answers


def test_every_answer_is_byte_identical_to_the_golden_file(start_proxy: ProxyFactory) -> None:
    answers = _answers(start_proxy())
    if os.environ.get("GOLDEN_UPDATE") == "1":
        GOLDEN.write_text(json.dumps(answers, indent=1, ensure_ascii=False) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert [a["request"] for a in answers] == [g["request"] for g in golden]
    for answer, expected in zip(answers, golden, strict=True):
        assert answer == expected, answer["request"]
