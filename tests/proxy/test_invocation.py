"""``parse_invocation``, table-driven: every body shape spiff-arena (or a bad client) can send."""

from __future__ import annotations

from typing import Any

import pytest

from connector_proxy.errors import DispatchError
from connector_proxy.invocation import Invocation, parse_invocation

OK: list[tuple[bytes, Invocation]] = [
    (b"", Invocation(params={})),
    (b"  \n", Invocation(params={})),
    (b"{}", Invocation(params={})),
    (b'{"a": 1, "b": [true, null]}', Invocation(params={"a": 1, "b": [True, None]})),
    (
        b'{"url": "u", "spiff__task_data": {"x": 1}, "spiff__callback_url": "http://cb",'
        b' "spiff__process_instance_id": 7, "spiff__process_model_identifier": "g/m", "spiff__task_id": "t1"}',
        Invocation(
            params={"url": "u"},
            task_data={"x": 1},
            callback_url="http://cb",
            process_instance_id=7,
            process_model_identifier="g/m",
            task_id="t1",
        ),
    ),
    # Unknown reserved keys are dropped, never passed to commands (older proxies crashed on them).
    (b'{"a": 1, "spiff__future": {"deep": 1}}', Invocation(params={"a": 1})),
    # Wrongly typed optional metadata is ignored, not an error.
    (
        b'{"spiff__process_instance_id": true, "spiff__task_id": 5, "spiff__process_model_identifier": 1}',
        Invocation(params={}),
    ),
    (b'{"spiff__process_instance_id": null, "spiff__task_data": null}', Invocation(params={})),
    (b'{"spiff__callback_url": ""}', Invocation(params={})),
]


@pytest.mark.parametrize(("body", "expected"), OK)
def test_parsed(body: bytes, expected: Invocation) -> None:
    assert parse_invocation(body) == expected


BAD: list[tuple[bytes, str]] = [
    (b"{not json", "The request body is not valid JSON."),
    (b'{"a": 1', "The request body is not valid JSON."),
    (b"[1, 2]", "The request body must be a JSON object of parameters."),
    (b'"text"', "The request body must be a JSON object of parameters."),
    (b"null", "The request body must be a JSON object of parameters."),
    (b"42", "The request body must be a JSON object of parameters."),
    (b'{"spiff__task_data": [1]}', "spiff__task_data must be a JSON object."),
    (b'{"spiff__callback_url": 3}', "spiff__callback_url must be a string."),
]


@pytest.mark.parametrize(("body", "message"), BAD)
def test_refused(body: bytes, message: str) -> None:
    with pytest.raises(DispatchError) as refused:
        parse_invocation(body)
    assert (refused.value.status, refused.value.code, refused.value.message) == (400, "invalid_request_body", message)


def test_parameters_keep_their_order_and_values() -> None:
    params: dict[str, Any] = parse_invocation(b'{"z": 1, "a": {"n": 2}, "m": "s"}').params
    assert list(params.items()) == [("z", 1), ("a", {"n": 2}), ("m", "s")]


@pytest.mark.parametrize(
    "number", ["18446744073709551616", "-9223372036854775809", "123456789012345678901234567890", "18446744073709551615"]
)
def test_integers_beyond_64_bits_stay_exact(number: str) -> None:
    invocation = parse_invocation(
        f'{{"n": {number}, "s": "{number}", "spiff__task_data": {{"m": [{number}]}}}}'.encode()
    )
    assert invocation.params["n"] == int(number) and type(invocation.params["n"]) is int
    assert invocation.params["s"] == number
    assert invocation.task_data["m"] == [int(number)]


@pytest.mark.parametrize(
    "body", [b'{"n": NaN, "d": 12345678901234567890}', b'{"n": Infinity, "d": 12345678901234567890}']
)
def test_the_exact_parser_refuses_what_json_does_not_allow(body: bytes) -> None:
    with pytest.raises(DispatchError) as raised:
        parse_invocation(body)
    assert raised.value.code == "invalid_request_body"


def test_deep_nesting_with_long_digits_is_a_clear_error() -> None:
    body = b'{"d": 12345678901234567890, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(DispatchError) as raised:
        parse_invocation(body)
    assert raised.value.code == "invalid_request_body"
