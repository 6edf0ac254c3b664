"""``POST /v1/do`` against community commands (pip-installed fixture packages), run by a real proxy:
parameter checks, result passthrough (v2, legacy v1, 202), errors without leaking secrets, timeouts."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector_proxy.app import create_app
from connector_proxy.settings import Settings
from proxytest.logs import captured_log_text
from proxytest.protocol import validate_do_response
from proxytest.servers import serve_in_thread

ProxyFactory = Callable[..., str]

PASSWORD = "pw-Zq8v1-never-echo"
CONFIG_SECRET = "cfg-S3cr3t-9a1b-never-echo"
CONFIG = {"FAILING_SECRET": CONFIG_SECRET, "GREETING": "hello from config"}


@pytest.fixture(scope="module")
def proxy(community_site: Path) -> Iterator[httpx.Client]:
    """One real proxy for the module (as ``start_proxy`` builds it), whose ``config`` setting holds
    a secret and a plain value. The commands used with it are stateless."""
    settings = Settings(connector_paths=[community_site], config=CONFIG)
    with serve_in_thread(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def do(http: httpx.Client, command_id: str, body: Any = None, *, content: bytes | None = None) -> httpx.Response:
    """POST /v1/do/<command_id>; every answer is checked against the protocol document."""
    if content is None:
        response = http.post(f"/v1/do/{command_id}", json={} if body is None else body)
    else:
        response = http.post(f"/v1/do/{command_id}", content=content, headers={"content-type": "application/json"})
    assert response.headers["content-type"].startswith("application/json")
    validate_do_response(response.status_code, response.json())
    return response


def do_legacy(http: httpx.Client, command_id: str, body: Any) -> httpx.Response:
    """A legacy v1 result is passed through as is: outside the v2 protocol, so not validated as v2."""
    return http.post(f"/v1/do/{command_id}", json=body)


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    payload = response.json()
    assert payload["command_response"] == {}
    return response.status_code, payload["error"]["error_code"], payload["error"]["message"]


# --- parameters ---


def test_missing_required_parameter(proxy: httpx.Client) -> None:
    status, code, message = error_of(do(proxy, "example/Echo", {"count": 2}))
    assert (status, code) == (400, "missing_parameter")
    assert "message" in message


def test_unknown_parameter_is_named_not_echoed(proxy: httpx.Client) -> None:
    response = do(proxy, "example/Echo", {"message": "hi", "bogus": "value-ZZZ-not-echoed"})
    status, code, message = error_of(response)
    assert (status, code) == (400, "unknown_parameter")
    assert "bogus" in message
    assert "value-ZZZ-not-echoed" not in response.text


def test_kwargs_command_accepts_any_parameter(proxy: httpx.Client) -> None:
    response = do(proxy, "example/AcceptsAnything", {"alpha": 1, "beta": {"nested": True}})
    assert response.status_code == 200
    assert response.json()["command_response"]["body"] == {"received": ["alpha", "beta"]}


def test_var_keyword_with_another_name_accepts_unknown_parameters(proxy: httpx.Client) -> None:
    response = do(proxy, "example/VarKeywordOptions", {"name": "n", "colour": "red"})
    assert response.status_code == 200
    assert response.json()["command_response"]["body"]["params"] == {"name": "n", "options": {"colour": "red"}}


def test_optional_without_default_is_passed_as_none(proxy: httpx.Client) -> None:
    response = do(proxy, "example/Echo", {"message": "hi"})
    assert response.status_code == 200
    assert response.json()["command_response"]["body"]["params"] == {"message": "hi", "note": None, "count": 1}
    given = do(proxy, "example/Echo", {"message": "hi", "note": "n", "count": 3})
    assert given.json()["command_response"]["body"]["params"] == {"message": "hi", "note": "n", "count": 3}


def test_parameter_values_of_any_json_type_reach_the_class(proxy: httpx.Client) -> None:
    params = {"names": ["a"], "pair": [1, 2], "mapping": {"k": 1}, "maybe_dict": None, "plain_dict": {}, "dicts": []}
    response = do(proxy, "example/GenericArguments", params)
    assert response.status_code == 200
    assert response.json()["command_response"]["body"]["params"] == params


# --- dispatch errors ---


def test_unknown_command(proxy: httpx.Client) -> None:
    status, code, message = error_of(do(proxy, "example/NoSuchCommand", {}))
    assert (status, code) == (404, "command_not_found")
    assert "example/NoSuchCommand" in message
    assert error_of(do(proxy, "nosuchconnector/Echo", {}))[:2] == (404, "command_not_found")


def test_classes_that_are_not_commands_cannot_be_run(proxy: httpx.Client) -> None:
    for command_id in (
        "example/PackageLevelCommand",
        "example/EchoMixin",
        "example/InnerCommand",
        "partial/NotListedEither",
    ):
        assert error_of(do(proxy, command_id, {}))[:2] == (404, "command_not_found"), command_id


@pytest.mark.parametrize("path", ["onlyone", "a/b/c"])
def test_malformed_path(proxy: httpx.Client, path: str) -> None:
    status, code, _ = error_of(do(proxy, path, {}))
    assert (status, code) == (404, "command_not_found")


@pytest.mark.parametrize(
    "content",
    [b"[1, 2]", b'"text"', b"42", b"null", b"{not json", b'{"message": "hi"', b'{"spiff__task_data": [1]}'],
    ids=["array", "string", "number", "null", "garbage", "truncated", "task-data-not-object"],
)
def test_body_that_is_not_an_object(proxy: httpx.Client, content: bytes) -> None:
    status, code, _ = error_of(do(proxy, "example/Echo", content=content))
    assert (status, code) == (400, "invalid_request_body")


def test_non_mapping_result(proxy: httpx.Client) -> None:
    status, code, message = error_of(do(proxy, "failing/NotAMapping", {}))
    assert (status, code) == (500, "invalid_command_result")
    assert "failing/NotAMapping" in message


def test_result_that_cannot_be_json(proxy: httpx.Client) -> None:
    status, code, _ = error_of(do(proxy, "failing/NotSerialisable", {}))
    assert (status, code) == (500, "invalid_command_result")


@pytest.mark.parametrize(
    "variant",
    ["no_body", "no_mimetype", "no_command_response", "http_status_not_int", "error_not_object", "logs_not_list"],
)
def test_malformed_v2_result_still_gets_a_protocol_answer(proxy: httpx.Client, variant: str) -> None:
    response = proxy.post("/v1/do/failing/MalformedV2", json={"variant": variant})
    validate_do_response(response.status_code, response.json())
    if variant in ("http_status_not_int", "error_not_object"):
        assert response.status_code == 500
        assert response.json()["error"]["error_code"] == "invalid_command_result"
    else:  # repaired with the protocol's defaults
        assert response.status_code == 200
        command_response = response.json()["command_response"]
        assert command_response["mimetype"] == "application/json"
        assert "body" in command_response
        if variant == "logs_not_list":
            assert response.json()["spiff__logs"] == ["one line"]


def test_raising_command_shows_its_exception_text_scrubbed_of_parameter_and_config_secrets(
    proxy: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    explode = do(proxy, "failing/Explode", {"password": PASSWORD})
    status, code, message = error_of(explode)
    assert (status, code) == (500, "ValueError")
    assert message == "Command failing/Explode failed with ValueError: boom ***"

    leak = do(proxy, "failing/ConfigLeak", {})
    status, code, message = error_of(leak)
    # error_code is the exception's class name, also for a connector's own exception class.
    assert (status, code) == (500, "UpstreamRefusedError")
    assert message == "Command failing/ConfigLeak failed with UpstreamRefusedError: upstream refused credentials ***"

    for response in (explode, leak):
        for secret in (PASSWORD, CONFIG_SECRET):
            assert secret not in response.text
    logs = captured_log_text(caplog)
    # The log has the type, the scrubbed text and the traceback down to the raising line...
    assert "boom ***" in logs and "upstream refused credentials ***" in logs
    assert "Traceback (most recent call last)" in logs and 'raise ValueError(f"boom {self.password}")' in logs
    for secret in (PASSWORD, CONFIG_SECRET):
        assert secret not in logs  # ...and no secret


@pytest.mark.parametrize(("signal", "code"), [("exit", "SystemExit"), ("interrupt", "KeyboardInterrupt")])
def test_system_exit_and_keyboard_interrupt_from_a_command_are_an_envelope_and_the_proxy_lives_on(
    proxy: httpx.Client, caplog: pytest.LogCaptureFixture, signal: str, code: str
) -> None:
    caplog.set_level(logging.DEBUG)
    status, error_code, message = error_of(do(proxy, "failing/Exits", {"password": PASSWORD, "signal": signal}))
    assert (status, error_code) == (500, code)
    assert PASSWORD not in message and "***" in message
    assert PASSWORD not in captured_log_text(caplog)
    assert do(proxy, "example/Echo", {"message": "still here"}).status_code == 200


def test_timeout(start_proxy: ProxyFactory) -> None:
    with httpx.Client(base_url=start_proxy(command_timeout=0.5), timeout=30) as http:
        status, code, message = error_of(do(http, "failing/Sleep", {"seconds": 3}))
        assert (status, code) == (504, "command_timeout")
        assert "failing/Sleep" in message
        # The proxy keeps serving while the timed-out thread finishes in the background.
        quick = do(http, "failing/Sleep", {"seconds": 0})
        assert quick.status_code == 200
        assert quick.json()["command_response"]["body"] == {"slept": 0.0}


def test_request_body_over_the_limit_is_refused_and_the_proxy_keeps_serving(start_proxy: ProxyFactory) -> None:
    with httpx.Client(base_url=start_proxy(max_request_bytes=4096), timeout=30) as http:
        just_fits = {"message": "x" * 3000}
        assert do(http, "example/Echo", just_fits).status_code == 200

        too_big = {"message": "x" * 5000}
        status, code, message = error_of(do(http, "example/Echo", too_big))
        assert (status, code) == (413, "request_too_large")
        assert "4096" in message and "x" * 20 not in message

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
            yield b'{"message": "'
            for _ in range(10):
                yield b"y" * 1000
            yield b'"}'

        chunked = http.post("/v1/do/example/Echo", content=chunks(), headers={"content-type": "application/json"})
        assert "content-length" not in chunked.request.headers
        assert error_of(chunked)[:2] == (413, "request_too_large")
        validate_do_response(chunked.status_code, chunked.json())

        assert do(http, "example/Echo", {"message": "still serving"}).status_code == 200


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/json"]
)
def test_a_body_not_sent_as_json_runs_nothing(proxy: httpx.Client, content_type: str) -> None:
    """A cross-site browser POST (a "simple" request: no preflight) cannot run a command."""
    answer = proxy.post("/v1/do/example/Echo", content=b'{"message": "csrf"}', headers={"content-type": content_type})
    status, code, message = error_of(answer)
    assert (status, code) == (415, "unsupported_media_type")
    assert content_type.partition(";")[0] in message


@pytest.mark.parametrize(
    "headers", [{"content-type": "application/json; charset=utf-8"}, {"content-type": "application/vnd.x+json"}, {}]
)
def test_json_media_types_and_no_content_type_are_taken(proxy: httpx.Client, headers: dict[str, str]) -> None:
    answer = proxy.post("/v1/do/example/Echo", content=b'{"message": "ok"}', headers=headers)
    assert answer.status_code == 200


def test_a_body_that_never_fully_arrives_runs_nothing(start_proxy: ProxyFactory) -> None:
    calls: list[str] = []

    class Counting(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            calls.append(self.path)
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        url = start_proxy()
        host, port = url.removeprefix("http://").split(":")
        body = json.dumps({"url": f"http://127.0.0.1:{upstream.server_port}/called", "data": {"a": 1}}).encode()
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            head = "POST /v1/do/http/PostRequestV2 HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            raw.sendall(f"{head}content-length: {len(body) + 1000}\r\n\r\n".encode() + body)
            time.sleep(0.3)  # the whole JSON object arrived, the rest of the declared length never does
        time.sleep(0.5)
        with httpx.Client(base_url=url, timeout=30) as http:  # the proxy is fine, and the same call works whole
            assert do(http, "http/PostRequestV2", json.loads(body)).status_code == 200
        assert calls == ["/called"]
    finally:
        upstream.shutdown()
        upstream.server_close()


def test_a_34_mib_task_data_body_is_taken_by_default(proxy: httpx.Client) -> None:
    """spiff-arena sends the whole task data with every call; the reference proxy takes this."""
    body = {"message": "big", "spiff__task_data": {"rows": ["r" * 1000] * (36 * 1024)}}
    answer = do(proxy, "example/Echo", body)
    assert answer.status_code == 200
    assert len(answer.request.content) > 34 * 1024 * 1024


def test_bodies_beyond_the_memory_budget_wait_then_get_503_and_the_proxy_recovers(start_proxy: ProxyFactory) -> None:
    url = start_proxy(max_body_memory_bytes=4096, body_wait_seconds=0.3)
    padded = {"seconds": 1.5, "spiff__task_data": {"pad": "p" * 3000}}  # held while the command runs
    with ThreadPoolExecutor(2) as pool, httpx.Client(base_url=url, timeout=30) as http:
        first = pool.submit(do, http, "failing/Sleep", padded)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not first.running():
            time.sleep(0.01)
        time.sleep(0.5)  # the first request's body is held now
        status, code, message = error_of(do(http, "failing/Sleep", {**padded, "seconds": 0}))
        assert (status, code) == (503, "proxy_busy")
        assert "CONNECTOR_PROXY_MAX_BODY_MEMORY_BYTES" in message and "p" * 20 not in message
        small = do(http, "failing/Sleep", {"seconds": 0})  # fits beside the first one
        assert small.status_code == 200
        assert first.result(timeout=30).status_code == 200
        assert do(http, "failing/Sleep", {**padded, "seconds": 0}).status_code == 200  # room again


# --- results ---


def test_v2_result_has_the_four_keys(proxy: httpx.Client) -> None:
    response = do(proxy, "example/Echo", {"message": "hi"})
    assert response.status_code == 200
    payload = response.json()
    assert set(payload) == {"command_response", "command_response_version", "error", "spiff__logs"}
    assert payload["command_response_version"] == 2
    assert payload["error"] is None
    assert payload["spiff__logs"] == ["echoed"]
    assert payload["command_response"]["http_status"] == 200


def test_minimal_v2_result_is_completed(proxy: httpx.Client) -> None:
    response = do(proxy, "example/MinimalV2", {})
    assert response.status_code == 200
    assert response.json() == {
        "command_response": {"body": {"ok": True}, "mimetype": "application/json"},
        "command_response_version": 2,
        "error": None,
        "spiff__logs": [],
    }


def test_legacy_v1_mapping_response(proxy: httpx.Client) -> None:
    response = do_legacy(proxy, "example/LegacyJson", {"value": [1, "two", {"three": 3}]})
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"value": [1, "two", {"three": 3}]}


def test_legacy_v1_text_response(proxy: httpx.Client) -> None:
    response = do_legacy(proxy, "example/LegacyText", {"text": "I'm a teapot"})
    assert response.status_code == 418
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "I'm a teapot"
    custom = do_legacy(proxy, "example/LegacyText", {"text": "<p>ok</p>", "status": 200, "mimetype": "text/html"})
    assert custom.status_code == 200
    assert custom.headers["content-type"].startswith("text/html")
    assert custom.text == "<p>ok</p>"


def test_execute_async_with_callback_url_answers_202(proxy: httpx.Client) -> None:
    callback = "http://127.0.0.1:1/v1.0/tasks/complete/123"
    response = do(proxy, "example/StartJob", {"job": "j1", "spiff__callback_url": callback})
    assert response.status_code == 202
    payload = response.json()
    assert payload["error"] is None
    assert payload["command_response"]["body"] == {"job": "j1", "mode": "async", "callback_url": callback}


def test_without_callback_url_execute_runs(proxy: httpx.Client) -> None:
    response = do(proxy, "example/StartJob", {"job": "j1"})
    assert response.status_code == 200
    assert response.json()["command_response"]["body"] == {"job": "j1", "mode": "sync"}


def test_callback_url_on_a_command_without_execute_async_runs_execute(proxy: httpx.Client) -> None:
    response = do(proxy, "example/Echo", {"message": "hi", "spiff__callback_url": "http://127.0.0.1:1/cb"})
    assert response.status_code == 200


# --- reserved keys and config ---


def test_task_data_reaches_execute(proxy: httpx.Client) -> None:
    response = do(proxy, "example/Echo", {"message": "hi", "spiff__task_data": {"x": 1, "y": {"z": 2}}})
    assert response.status_code == 200
    assert response.json()["command_response"]["body"]["task_data_keys"] == ["x", "y"]
    empty = do(proxy, "example/Echo", {"message": "hi"})
    assert empty.json()["command_response"]["body"]["task_data_keys"] == []


def test_reserved_keys_are_not_passed_to_the_class(proxy: httpx.Client) -> None:
    body = {
        "alpha": 1,
        "spiff__foo": "ignored",
        "spiff__process_instance_id": 7,
        "spiff__process_model_identifier": "group/model",
        "spiff__task_id": "task-1",
        "spiff__task_data": {"k": "v"},
    }
    response = do(proxy, "example/AcceptsAnything", body)
    assert response.status_code == 200
    assert response.json()["command_response"]["body"] == {"received": ["alpha"]}
    # A command without **kwargs does not see unknown spiff__ keys as unknown parameters either.
    assert do(proxy, "example/Echo", {"message": "hi", "spiff__foo": 1, "spiff__bar": None}).status_code == 200


def test_config_setting_reaches_execute(proxy: httpx.Client) -> None:
    response = do(proxy, "example/ConfigValue", {"key": "GREETING"})
    assert response.status_code == 200
    assert response.json()["command_response"]["body"] == {
        "key": "GREETING",
        "present": True,
        "value": "hello from config",
    }
    echo = do(proxy, "example/Echo", {"message": "hi"})
    assert echo.json()["command_response"]["body"]["config_keys"] == sorted(CONFIG)
