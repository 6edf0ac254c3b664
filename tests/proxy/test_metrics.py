"""/metrics counts every /v1/do outcome by command and error_code, with bounded label values; each
call has one log line and an X-Request-Id."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from connector_proxy.app import create_app
from connector_proxy.call_context import CallContext
from connector_proxy.dispatch import dispatch
from connector_proxy.loading.embedded import EmbeddedConnectors
from connector_proxy.metrics import MAX_ERROR_CODES, ProxyMetrics
from connector_proxy.registry import Registry
from connector_proxy.settings import Settings
from proxytest.servers import serve_in_thread
from proxytest.shop import shop_app

SECRET = "card-4111-1111-1111-1111"


@pytest.fixture(scope="module")
def proxy() -> Iterator[httpx.Client]:
    with serve_in_thread(shop_app()) as url, httpx.Client(base_url=url) as http:
        yield http


def _samples(client: httpx.Client, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    families = text_string_to_metric_families(client.get("/metrics").text)
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
        if sample.name == name
    }


def _count(client: httpx.Client, name: str, **labels: str) -> float:
    return _samples(client, name).get(tuple(sorted(labels.items())), 0.0)


def test_every_outcome_is_counted_by_command_and_error_code(proxy: httpx.Client) -> None:
    cases = [
        ({"item": "tea"}, "200", "success", None),
        ({"item": "missing"}, "200", "command_error", "ItemNotFound"),
        ({"item": "gone"}, "200", "command_error", "http_410"),
        ({"item": "declined"}, "200", "command_error", "PaymentDeclined"),
        ({"item": "x" * 31}, "400", "dispatch_error", "invalid_parameter"),
        ({}, "400", "dispatch_error", "missing_parameter"),
    ]
    for body, status, outcome, code in cases:
        before = _count(proxy, "connector_proxy_command_requests_total", command="shop/Buy", status=status,
                        outcome=outcome)  # fmt: skip
        errors = {"command": "shop/Buy", "outcome": outcome, "error_code": code or ""}
        errors_before = _count(proxy, "connector_proxy_command_errors_total", **errors)
        assert proxy.post("/v1/do/shop/Buy", json=body).status_code == int(status)
        after = _count(proxy, "connector_proxy_command_requests_total", command="shop/Buy", status=status,
                       outcome=outcome)  # fmt: skip
        assert after == before + 1, body
        if code is not None:
            assert _count(proxy, "connector_proxy_command_errors_total", **errors) == errors_before + 1, body
    assert _count(proxy, "connector_proxy_commands_in_flight", command="shop/Buy") == 0


def test_unknown_commands_collapse_into_one_label(proxy: httpx.Client) -> None:
    for name in ("Nope1", "Nope2"):
        assert proxy.post(f"/v1/do/shop/{name}", json={}).status_code == 404
    labels = {dict(key)["command"] for key in _samples(proxy, "connector_proxy_command_requests_total")}
    assert "unknown" in labels and not any(label.startswith("shop/Nope") for label in labels)


def test_a_refused_body_is_counted_too(proxy: httpx.Client) -> None:
    labels = {"command": "shop/Buy", "status": "415", "outcome": "dispatch_error"}
    before = _count(proxy, "connector_proxy_command_requests_total", **labels)
    refused = proxy.post("/v1/do/shop/Buy", content=b"item=tea", headers={"content-type": "text/plain"})
    assert refused.status_code == 415
    assert _count(proxy, "connector_proxy_command_requests_total", **labels) == before + 1


def test_build_and_process_facts(proxy: httpx.Client) -> None:
    text = proxy.get("/metrics").text
    assert "connector_proxy_build_info{" in text and "process_resident_memory_bytes" in text
    assert "python_gc_collections_total" in text


def test_error_codes_beyond_the_cap_are_other() -> None:
    metrics = ProxyMetrics()
    for index in range(MAX_ERROR_CODES + 5):
        metrics.started("shop/Fail")
        metrics.observe("shop/Fail", 200, "command_error", f"Code{index}", 0.001)
    metrics.observe("shop/Fail", 200, "command_error", "Code0", 0.001, started=False)  # admitted before
    metrics.observe("shop/Fail", 200, "command_error", "bad code\nwith newline", 0.001, started=False)
    counted = {
        sample.labels["error_code"]: sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == "connector_proxy_command_errors_total"
    }
    assert len(counted) == MAX_ERROR_CODES + 1
    assert counted["other"] == 6 and counted["Code0"] == 2


def test_each_call_has_one_log_line_and_a_request_id(proxy: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    body = {
        "item": "missing",
        "card": SECRET,
        "spiff__process_instance_id": 42,
        "spiff__process_model_identifier": "orders/checkout",
        "spiff__task_id": "task-7",
    }
    with caplog.at_level(logging.INFO, logger="connector_proxy.do"):
        given = proxy.post("/v1/do/shop/Buy", json={"item": "tea"}, headers={"x-request-id": "req-123.abc"})
        failed = proxy.post("/v1/do/shop/Buy", json=body)
        odd = proxy.post("/v1/do/shop/Buy", json={"item": "tea"}, headers={"x-request-id": "has spaces"})
    assert given.headers["x-request-id"] == "req-123.abc"
    assert len(odd.headers["x-request-id"]) == 32 and odd.headers["x-request-id"] != "has spaces"
    generated = failed.headers["x-request-id"]
    assert (failed.headers["connector-proxy-outcome"], failed.headers["connector-proxy-error-code"]) == (
        "dispatch_error",
        "unknown_parameter",
    )
    lines = [r for r in caplog.records if r.name == "connector_proxy.do" and r.getMessage() == "command answered"]
    assert len(lines) == 3
    first, second, _ = (r.__dict__ for r in lines)
    assert (first["request_id"], first["command"], first["outcome"], first["status"]) == (
        "req-123.abc",
        "shop/Buy",
        "success",
        200,
    )
    assert first["duration_ms"] > 0 and "error_code" not in first
    assert second["request_id"] == generated
    assert (second["outcome"], second["error_code"], second["status"]) == ("dispatch_error", "unknown_parameter", 400)
    assert second["spiff__process_instance_id"] == 42
    assert second["spiff__process_model_identifier"] == "orders/checkout"
    assert second["spiff__task_id"] == "task-7"
    assert SECRET not in str([r.__dict__ for r in caplog.records])


class _Broken:
    """A command whose run fails in a way dispatch does not expect (a bug, not a command error)."""

    id = "shop/Broken"
    connector = "shop"
    source = "tests"

    def catalog_entry(self) -> dict[str, object]:
        return {"id": self.id, "parameters": []}

    async def run(self, body: bytes, runtime: object) -> object:
        raise RuntimeError("a bug in the proxy")


async def test_a_call_ending_without_an_outcome_is_counted_and_not_left_in_flight(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(Settings(), embedded=EmbeddedConnectors(registry=Registry.build([_Broken()]), connectors=()))
    state = app.state.proxy
    with caplog.at_level(logging.INFO, logger="connector_proxy.do"), pytest.raises(RuntimeError):
        await dispatch(state, "shop/Broken", b"{}", CallContext("r-1"))
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in state.metrics.registry.collect()
        for sample in family.samples
    }
    assert samples[("connector_proxy_commands_in_flight", (("command", "shop/Broken"),))] == 0
    key = ("connector_proxy_command_errors_total", (("command", "shop/Broken"), ("error_code", "unanswered"),
                                                     ("outcome", "dispatch_error")))  # fmt: skip
    assert samples[key] == 1
    [line] = [r for r in caplog.records if r.getMessage() == "command answered"]
    assert (line.__dict__["error_code"], line.__dict__["status"]) == ("unanswered", 500)
