"""kopf handlers: thin triggers around :func:`connector_operator.reconcile.reconcile`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx
import kopf

from connector_operator.callers import CallerKeys
from connector_operator.catalogs import CatalogIndex, claim_basis, claims, index_entry
from connector_operator.kube import Kube
from connector_operator.manifests import labels
from connector_operator.recheck import RecheckServer
from connector_operator.reconcile import RetryLater, Services, SpecRejected, reconcile
from connector_operator.settings import OperatorSettings
from connector_proxy.catalog_map import CATALOG_LABEL
from connector_proxy.contract import CONNECTOR_ANNOTATION, GROUP, PLURAL, VERSION, Claim, key_of, load_kube_config

if TYPE_CHECKING:
    from connector_operator.spec import ConnectorSpec

logger = logging.getLogger(__name__)
MANAGED_BY = {"app.kubernetes.io/managed-by": labels("any")["app.kubernetes.io/managed-by"]}


CATALOG_MAPS = {CATALOG_LABEL: "true"}


def _claims(connectors: kopf.Index[Any, Any], catalogs: CatalogIndex | None) -> list[Claim]:
    return claims((basis for store in connectors.values() for basis in store), catalogs)


def register(registry: kopf.OperatorRegistry, operator_settings: OperatorSettings) -> None:
    """Register every handler on ``registry`` (explicit, so tests and the CLI share one set-up)."""

    @kopf.on.login(registry=registry)
    async def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # An explicit registry carries none of kopf's implicit login handlers: log in as the
        # kubernetes_asyncio client does (in-cluster service account, else the kubeconfig).
        return await kopf.login_via_async_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def configure(memo: Any, settings: kopf.OperatorSettings, **kwargs: Any) -> None:
        # Keep kopf's own bookkeeping in annotations, never in our status.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
        settings.posting.level = logging.WARNING
        if not operator_settings.cluster_wide:
            # Fixed namespaces: kopf needs neither to list namespaces nor to watch CRDs (it discovers
            # the Connector resource once, at start-up), so no ClusterRole is needed at all.
            settings.scanning.disabled = True
        await load_kube_config()
        kube = Kube()
        callers = CallerKeys(kube.service_account_issuer) if operator_settings.caller_auth else None
        services = Services(
            kube=kube,
            http=httpx.AsyncClient(),
            settings=operator_settings,
            callers=callers,
            catalogs=kwargs["catalog_maps"],
        )
        memo["services"] = services
        # Periodic re-discovery runs as the operator's own task, not a kopf timer: timers make kopf put a
        # finalizer on every Connector, and nothing here needs one.
        memo["rediscovery"] = asyncio.create_task(rediscover_forever(services))
        # Proxies ask for an immediate re-discovery when a url source refuses a forwarded call.
        server = RecheckServer(
            operator_settings.namespaces,
            lambda ns, name: recheck_one(services, ns, name),
            metrics=services.metrics.registry,
        )
        try:
            await server.start("0.0.0.0", operator_settings.recheck_port)  # noqa: S104 - a server
        except OSError as error:
            memo["rediscovery"].cancel()
            await services.http.aclose()
            await services.kube.close()
            message = f"cannot listen on CONNECTOR_OPERATOR_RECHECK_PORT {operator_settings.recheck_port}: {error}"
            raise kopf.PermanentError(message) from None
        memo["recheck"] = server

    @kopf.on.cleanup(registry=registry)
    async def close(memo: Any, **_: Any) -> None:
        server: RecheckServer = memo["recheck"]
        await server.stop()
        memo["rediscovery"].cancel()
        services: Services = memo["services"]
        await services.http.aclose()
        await services.kube.close()

    @kopf.index(GROUP, VERSION, PLURAL, id="command_claims", registry=registry)
    def command_claims(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> dict[tuple[str, str], Any]:
        return {(namespace or "", name): claim_basis(body)}

    @kopf.index("v1", "configmaps", labels=CATALOG_MAPS, id="catalog_maps", registry=registry)
    def catalog_maps(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> dict[tuple[str, str], Any]:
        return index_entry(body, namespace, name)

    @kopf.index(GROUP, VERSION, PLURAL, id="secret_users", registry=registry)
    def secret_users(spec: kopf.Spec, namespace: str | None, name: str, **_: Any) -> dict[tuple[str, str], str]:
        return _users(spec, namespace, name, lambda parsed: parsed.referenced_secrets())

    @kopf.index(GROUP, VERSION, PLURAL, id="config_map_users", registry=registry)
    def config_map_users(spec: kopf.Spec, namespace: str | None, name: str, **_: Any) -> dict[tuple[str, str], str]:
        return _users(spec, namespace, name, lambda parsed: parsed.referenced_config_maps())

    async def run(memo: Any, body: kopf.Body, command_claims: kopf.Index[Any, Any], retry: int) -> None:
        services: Services = memo["services"]
        try:
            await reconcile(services, body, _claims(command_claims, services.catalogs), retry=retry)
        except SpecRejected as error:
            raise kopf.PermanentError(str(error)) from None
        except RetryLater as error:
            raise kopf.TemporaryError(str(error), delay=error.delay) from None

    @kopf.on.create(GROUP, VERSION, PLURAL, id="converge", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="converge", registry=registry)
    @kopf.on.resume(GROUP, VERSION, PLURAL, id="converge", registry=registry)
    async def converge(memo: Any, body: kopf.Body, retry: int, **kwargs: Any) -> None:
        await run(memo, body, kwargs["command_claims"], retry)

    @kopf.on.field(
        "apps",
        "v1",
        "deployments",
        field="status.availableReplicas",
        labels=MANAGED_BY,
        id="workload",
        registry=registry,
    )
    async def workload_changed(memo: Any, annotations: Mapping[str, str], namespace: str | None, **kwargs: Any) -> None:
        owner = annotations.get(CONNECTOR_ANNOTATION)  # the full name (labels may be shortened)
        await _reconcile_named(memo, namespace or "", owner, kwargs["command_claims"])

    @kopf.on.event("v1", "secrets", id="secrets", registry=registry)
    async def secret_changed(memo: Any, namespace: str | None, name: str, **kwargs: Any) -> None:
        users: kopf.Index[Any, Any] = kwargs["secret_users"]
        for connector in sorted(set(users.get((namespace or "", name), []))):
            await _reconcile_named(memo, namespace or "", connector, kwargs["command_claims"])

    @kopf.on.event("v1", "configmaps", id="configmaps", registry=registry)
    async def config_map_changed(memo: Any, namespace: str | None, name: str, **kwargs: Any) -> None:
        users: kopf.Index[Any, Any] = kwargs["config_map_users"]
        for connector in sorted(set(users.get((namespace or "", name), []))):
            await _reconcile_named(memo, namespace or "", connector, kwargs["command_claims"])

    @kopf.on.event("v1", "configmaps", labels=CATALOG_MAPS, id="catalog_map_deleted", registry=registry)
    async def catalog_map_deleted(
        memo: Any, event: Mapping[str, Any], annotations: Mapping[str, str], namespace: str | None, **kwargs: Any
    ) -> None:
        # Deleted by hand (or by garbage collection, when the Connector is gone: then nothing is done):
        # the Connector's next reconcile writes it again.
        if event.get("type") == "DELETED":
            await _reconcile_named(
                memo, namespace or "", annotations.get(CONNECTOR_ANNOTATION), kwargs["command_claims"]
            )


def _users(
    spec: Mapping[str, Any], namespace: str | None, name: str, referenced: Callable[[ConnectorSpec], frozenset[str]]
) -> dict[tuple[str, str], str]:
    """An index entry: each object (Secret, ConfigMap) the Connector ``name`` refers to -> that Connector."""
    from connector_operator.spec import InvalidSpec, parse_spec

    try:
        objects = referenced(parse_spec(dict(spec)))
    except InvalidSpec:
        return {}
    return {(namespace or "", obj): name for obj in objects}


async def rediscover_once(services: Services) -> int:
    """Reconcile every Connector once (a fresh list, so claims are consistent); return how many."""
    bodies = await services.kube.list_connectors(services.settings.namespaces)
    current = claims(bodies, services.catalogs)
    services.metrics.keep_only({key_of(body) for body in bodies})
    for body in bodies:
        try:
            await reconcile(services, body, current)
        except (SpecRejected, RetryLater) as error:
            logger.info("periodic re-discovery not converged", extra={"reason": str(error)})
        except Exception as error:  # one broken Connector must not stop the others' re-discovery
            logger.warning("periodic re-discovery failed", extra={"error": type(error).__name__})
    return len(bodies)


async def recheck_one(services: Services, namespace: str, name: str) -> bool:
    """Reconcile one Connector now (``POST /v1/recheck``); False when there is no such Connector. A
    fresh list of every watched Connector, as :func:`rediscover_once`, so its claims are consistent."""
    bodies = await services.kube.list_connectors(services.settings.namespaces)
    current = claims(bodies, services.catalogs)
    body = next((body for body in bodies if key_of(body) == f"{namespace}/{name}"), None)
    if body is None:
        logger.info("recheck of a Connector that does not exist", extra={"connector": f"{namespace}/{name}"})
        return False
    try:
        await reconcile(services, body, current)
    except (SpecRejected, RetryLater) as error:
        logger.info("recheck not converged", extra={"connector": f"{namespace}/{name}", "reason": str(error)})
    return True


async def rediscover_forever(services: Services) -> None:
    while True:
        await asyncio.sleep(services.settings.discovery_interval)
        try:
            await rediscover_once(services)
        except Exception as error:
            logger.warning("listing Connectors failed", extra={"error": type(error).__name__})


async def _reconcile_named(memo: Any, namespace: str, name: str | None, command_claims: kopf.Index[Any, Any]) -> None:
    if not name:
        return
    services: Services = memo["services"]
    body = await services.kube.get_connector(namespace, name)
    if body is None:
        return
    try:
        await reconcile(services, body, _claims(command_claims, services.catalogs))
    except (SpecRejected, RetryLater) as error:
        logger.info("reconcile not converged", extra={"connector": f"{namespace}/{name}", "reason": str(error)})
