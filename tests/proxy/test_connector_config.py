"""A connector's declared config model is checked at load: problems in /v1/status, calls refused."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, Field, SecretStr

from connector_proxy.app import create_app
from connector_proxy.connector_config import check_config
from connector_proxy.loading.embedded import EmbeddedConnectors
from connector_proxy.loading.sdk import load_sdk_connector
from connector_proxy.registry import Registry
from connector_proxy.settings import Settings
from proxytest.protocol import validate_do_response
from proxytest.servers import serve_in_thread
from spiff_connector_sdk import Connector, Context, Result
from spiff_connector_sdk.testing import call

TOKEN = "tok-0123456789-SECRET"


class CrmConfig(BaseModel):
    base_url: str = Field(alias="CRM_BASE_URL", pattern=r"^https://")
    token: SecretStr = Field(alias="CRM_TOKEN", min_length=8)
    timeout: float = Field(10.0, alias="CRM_TIMEOUT", gt=0, le=60)


@dataclass(frozen=True)
class PlainConfig:
    PLAIN_REGION: str
    PLAIN_RETRIES: int = 2


crm = Connector("crm", config=CrmConfig)


@crm.command("Whoami")
async def whoami(ctx: Context) -> Result:
    config = ctx.config_as(CrmConfig)
    return Result(body={"base_url": config.base_url, "timeout": config.timeout, "token_length": len(config.token)})


@crm.command("WrongModel")
def wrong_model(ctx: Context) -> Result:
    ctx.config_as(PlainConfig)
    return Result(body={})


GOOD = {"CRM_BASE_URL": "https://crm.example", "CRM_TOKEN": TOKEN, "CRM_TIMEOUT": "2.5", "UNRELATED": "x"}


def test_a_valid_config_is_the_model_instance_and_other_keys_are_ignored() -> None:
    checked = check_config("crm", CrmConfig, GOOD)
    assert checked.valid
    assert isinstance(checked.instance, CrmConfig)
    assert checked.instance.timeout == 2.5  # strings, as Secrets hold them, are converted
    assert checked.instance.token.get_secret_value() == TOKEN


def test_problems_name_each_key_and_the_rule_never_the_value() -> None:
    bad = {"CRM_BASE_URL": "http://plain.example/" + TOKEN, "CRM_TIMEOUT": TOKEN}
    checked = check_config("crm", CrmConfig, bad)
    assert checked.instance is None
    assert checked.problems == (
        "CRM_BASE_URL: String should match pattern '^https://'",
        "CRM_TOKEN: Field required",
        "CRM_TIMEOUT: Input should be a valid number, unable to parse string as a number",
    )
    assert not any(TOKEN in problem for problem in checked.problems)


def test_a_dataclass_is_a_model_too() -> None:
    checked = check_config("plain", PlainConfig, {"PLAIN_REGION": "eu", "PLAIN_RETRIES": "4"})
    assert checked.instance == PlainConfig(PLAIN_REGION="eu", PLAIN_RETRIES=4)
    assert check_config("plain", PlainConfig, {}).problems == ("PLAIN_REGION: Field required",)


@pytest.mark.parametrize("model", [dict, "CrmConfig", 3])
def test_something_that_is_no_model_is_a_problem(model: object) -> None:
    (problem,) = check_config("crm", model, GOOD).problems
    assert "is neither a pydantic model nor a dataclass" in problem


def test_a_model_pydantic_cannot_build_is_a_problem_not_a_crash() -> None:
    class Unfinished(BaseModel):
        later: Later  # type: ignore[name-defined]  # noqa: F821 - a name defined nowhere

    (problem,) = check_config("crm", Unfinished, GOOD).problems
    assert problem == "config model Unfinished cannot be validated: PydanticUserError"


def test_loading_reports_invalid_config_as_a_config_problem() -> None:
    loaded = load_sdk_connector(crm, {"CRM_BASE_URL": "https://crm.example"})
    assert loaded.problems == ["crm: invalid config: CRM_TOKEN: Field required"]
    assert loaded.config_problems == loaded.problems
    assert {c.id for c in loaded.commands} == {"crm/Whoami", "crm/WrongModel"}  # listed, refused when called
    assert load_sdk_connector(crm, GOOD).problems == []


def _serve(config: Mapping[str, Any]) -> Iterator[httpx.Client]:
    loaded = load_sdk_connector(crm, config)
    registry = Registry.build(loaded.commands, loaded.auths, problems=loaded.problems)
    app = create_app(Settings(config=dict(config)), embedded=EmbeddedConnectors(registry=registry, connectors=(crm,)))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def misconfigured() -> Iterator[httpx.Client]:
    yield from _serve({"CRM_BASE_URL": "ftp://" + TOKEN, "CRM_TOKEN": TOKEN})


def test_status_lists_what_is_wrong(misconfigured: httpx.Client) -> None:
    status = misconfigured.get("/v1/status").json()
    assert status["problems"] == ["crm: invalid config: CRM_BASE_URL: String should match pattern '^https://'"]
    assert TOKEN not in misconfigured.get("/v1/status").text


def test_calls_are_refused_with_connector_misconfigured(misconfigured: httpx.Client) -> None:
    response = misconfigured.post("/v1/do/crm/Whoami", json={})
    validate_do_response(response.status_code, response.json())
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["error_code"] == "connector_misconfigured"
    assert error["message"] == (
        "Connector crm is misconfigured, so crm/Whoami cannot run: CRM_BASE_URL: String should match pattern "
        "'^https://'."
    )
    assert "crm/Whoami" in {c["id"] for c in misconfigured.get("/v1/commands").json()}


def test_a_configured_command_reads_the_validated_instance() -> None:
    answer = call(crm, "Whoami", config=GOOD)
    assert answer.status == 200, answer.envelope
    assert answer.body == {"base_url": "https://crm.example", "timeout": 2.5, "token_length": len(TOKEN)}


def test_asking_for_another_model_names_the_declared_one() -> None:
    answer = call(crm, "WrongModel", config=GOOD)
    assert answer.error_code == "TypeError"
    assert answer.error is not None
    assert "the connector declares CrmConfig, not PlainConfig" in answer.error["message"]


def test_the_testing_helper_answers_misconfigured_instead_of_raising() -> None:
    answer = call(crm, "Whoami", config={})
    assert (answer.status, answer.error_code) == (503, "connector_misconfigured")
    assert "CRM_BASE_URL: Field required; CRM_TOKEN: Field required" in (answer.error or {})["message"]
