"""An in-memory Kubernetes API for tests: kmock 0.8's ``KubernetesEmulator`` with its gaps closed.

Every gap closed here is a row of the table in ``tests/kube/README.md``; comments cite them:

- [G1] metadata: resourceVersion (one global counter), uid, creationTimestamp, generation (+1 on spec
  changes only); 422 on a failed JSON-patch ``test`` op; 409 on a stale resourceVersion.
- [G2] built-in resources declared (bundled discovery data: namespaces, deployments, services, secrets,
  configmaps, events, leases, CRDs ...).
- [G3] ``/api/v1/namespaces[/NAME[/status]]`` routed to the namespaces resource.
- [G4] watches: subscribed before the snapshot, ``?resourceVersion=N`` honoured (410 Expired when older
  than the kept history, see :meth:`KubernetesEmulator.compact`), ``watch=true|True|1``, a JSON stream,
  BOOKMARKs; a DELETE emits DELETED.
- [G5] POST answers 201.
- [G6] List bodies carry kind/apiVersion; core discovery says ``groupVersion: v1``.
- [G7] label/field selectors, PUT, server-side apply (create-on-missing, else merge-patch).
- [G8] the status subresource is isolated.
- [G9] POSTing a CRD registers its resource and marks the CRD Established.
- [G10] the ServiceAccount issuer's discovery document and public keys (``/openid/v1/jwks``), for a key
  of the emulator's own (``service_account_key``, so a test can sign tokens as the cluster).
- [P4] (pitfall 4) ``metadata.namespace`` filled from the URL on namespaced POSTs.

Not emulated (see the README): strategic-merge patch (treated as merge-patch: lists are replaced), field
ownership of server-side apply, owner-reference garbage collection, namespace existence, admission and
schema validation, controllers, ``limit``/``continue`` paging (all items come in one page), deletecollection.

Writes are computed synchronously in :meth:`KubernetesEmulator._handle` (one event loop, no awaits in
between: no lock needed), *before* kmock's reactions run, so kmock's DSL (``emu['patch', ...] << 500``)
still injects failures after the write is stored (pitfall 5).
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import functools
import gzip
import importlib.resources
import re
import secrets
import string
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import jsonpointer
import kmock
import yaml
from joserfc.jwk import ECKey, KeySet
from kmock._internal import enums, parsing, rendering  # private, hence the kmock==0.8 pin

JSON = dict[str, Any]
Key = tuple[kmock.resource, str | None, str]
CRDS = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
CRD_VERBS = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
APPLY = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"

# [G3] kmock's path parser crashes on /api/v1/namespaces and reads /api/v1/namespaces/NAME as a namespace
# scope. [G4] it takes only `watch=true` as a watch; kubernetes_asyncio sends `watch=True`.
# Both parsers are pure functions that kmock's Request._parse looks up at call time: wrap them once.
_kmock_parse_path = parsing.parse_path
_kmock_guess_k8s = parsing.guess_k8s


SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


def _parse_path(path: str) -> parsing.ParsedPath:
    parts = path.strip("/").split("/")
    namespaces = len(parts) >= 3 and parts[0] == "api" and parts[2] == "namespaces"
    if namespaces and (len(parts) <= 4 or parts[4] in {"status", "finalize"}):
        name = parts[3] if len(parts) > 3 else None
        return parsing.ParsedPath("", parts[1], "namespaces", None, name, "/".join(parts[4:]) or None)
    return _kmock_parse_path(path)


def _guess_k8s(k8s: parsing.ParsedPath, method: enums.method, query: dict[str, str]) -> enums.action | None:
    if k8s.group is not None and method == enums.method.GET and query.get("watch", "").lower() in {"true", "1"}:
        return enums.action.WATCH
    return _kmock_guess_k8s(k8s, method, query)


parsing.parse_path = _parse_path
parsing.guess_k8s = _guess_k8s


@functools.cache
def _bundled_resources() -> bytes:
    """kmock's bundled discovery data (what ``resources.load_bundled()`` reads, minus its DeprecationWarning)."""
    return gzip.decompress(importlib.resources.files("kmock._internal").joinpath("resources.json.gz").read_bytes())


def api_error(status: int, reason: str, message: str) -> kmock.KubernetesError:
    """An error rendered as a ``kind: Status`` body, with the reasons the real API uses."""
    return kmock.KubernetesError(status=status, reason=reason, message=message, details={})


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def api_version_of(res: kmock.resource) -> str:
    return f"{res.group}/{res.version}" if res.group else str(res.version)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge-patch: dicts merge recursively, ``None`` deletes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _split_selector(selector: str) -> list[str]:
    return [part.strip() for part in re.split(r",(?![^()]*\))", selector) if part.strip()]


_LABEL_REQUIREMENT = re.compile(
    r"^(?P<neg>!)?(?P<key>[\w./-]+)\s*(?:(?P<op>==|=|!=)\s*(?P<value>[\w.-]*)|\s+(?P<set>in|notin)\s*\((?P<values>[^)]*)\))?$"
)


def label_matcher(selector: str) -> Callable[[Mapping[str, str]], bool]:
    """Equality (``=``, ``==``, ``!=``), set (``in``, ``notin``) and existence (``key``, ``!key``) requirements."""
    checks: list[Callable[[Mapping[str, str]], bool]] = []
    for requirement in _split_selector(selector):
        m = _LABEL_REQUIREMENT.match(requirement)
        if m is None or (m["neg"] and (m["op"] or m["set"])):
            raise api_error(400, "BadRequest", f"unable to parse requirement: {requirement!r}")
        key, op, value, neg = m["key"], m["op"] or m["set"] or "", m["value"], bool(m["neg"])
        values = {v.strip() for v in (m["values"] or "").split(",")}

        def check(
            labels: Mapping[str, str],
            key: str = key,
            op: str = op,
            value: str = value,
            vs: set[str] = values,
            neg: bool = neg,
        ) -> bool:
            if op in {"=", "=="}:
                return labels.get(key) == value
            if op in {"!=", "notin"}:
                return labels.get(key) not in ({value} if op == "!=" else vs)
            return labels.get(key) in vs if op == "in" else (key in labels) != neg

        checks.append(check)
    return lambda labels: all(check(labels) for check in checks)


def field_matcher(selector: str) -> Callable[[JSON], bool]:
    """``path=value``, ``path==value``, ``path!=value`` on dotted paths (``metadata.name``, ``status.phase``)."""
    checks: list[Callable[[JSON], bool]] = []
    for requirement in _split_selector(selector):
        m = re.match(r"^([\w.]+)\s*(==|=|!=)\s*(.*)$", requirement)
        if m is None:
            raise api_error(400, "BadRequest", f"invalid field selector: {requirement!r}")
        path, op, value = m.groups()

        def check(obj: JSON, path: str = path, op: str = op, value: str = value) -> bool:
            found: Any = obj
            for part in path.split("."):
                found = found.get(part) if isinstance(found, Mapping) else None
            text = "" if found is None else str(found).lower() if isinstance(found, bool) else str(found)
            return (text == value) != (op == "!=")

        checks.append(check)
    return lambda obj: all(check(obj) for check in checks)


def _with_status(obj: JSON, status: Any) -> JSON:
    return {k: v for k, v in obj.items() if k != "status"} | ({} if status is None else {"status": status})


@attrs.frozen
class WatchEvent:
    rv: int
    resource: kmock.resource
    type: str  # ADDED, MODIFIED, DELETED
    object: JSON
    old: JSON | None  # the previous state for MODIFIED: to translate selector transitions


@attrs.define(kw_only=True)
class KubernetesEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with the gaps of ``tests/kube/README.md`` closed (see the module docstring).

    Start it like any kmock handler: ``async with emu, kmock.Server(emu): ...``.
    """

    history_limit: int = 10_000  # watch events kept for ?resourceVersion=N resumption [G4]
    _rv: int = attrs.field(default=0, init=False)
    _history: list[WatchEvent] = attrs.field(factory=list, init=False)
    _expired_below: int = attrs.field(default=0, init=False)  # a watch from an older RV gets 410 [G4]
    _watchers: set[asyncio.Queue[WatchEvent | None]] = attrs.field(factory=set, init=False)
    _results: dict[int, tuple[int, JSON]] = attrs.field(factory=dict, init=False)  # id(request) -> write result
    service_account_key: ECKey = attrs.field(
        factory=lambda: ECKey.generate_key("P-256", parameters={"kid": "emulator"}), init=False
    )

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # [G2] the built-ins: v1 (namespaces, secrets, services, events...), apps/v1, events.k8s.io, leases, CRDs
        self.resources.load_data(_bundled_resources())
        self.fallback[enums.method.PUT] << self._serve_written  # [G7] kmock has no PUT at all
        # [G10] what workloads check their callers' tokens with
        self["get /.well-known/openid-configuration"] << {
            "issuer": SERVICE_ACCOUNT_ISSUER,
            "jwks_uri": "/openid/v1/jwks",
        }
        self["get /openid/v1/jwks"] << KeySet([self.service_account_key]).as_dict(private=False)

    @property
    def resource_version(self) -> int:
        """The current global resourceVersion (as in a List's ``metadata.resourceVersion``)."""
        return self._rv

    def compact(self) -> None:
        """Forget the watch history, like etcd compaction: watches from an older RV now get 410 Expired."""
        self._history.clear()
        self._expired_below = self._rv

    def close_watches(self) -> None:
        """End every open watch stream (so that the server can stop without waiting for them)."""
        for queue in self._watchers:
            queue.put_nowait(None)

    def find_resource(self, api_version: str, kind_or_plural: str) -> kmock.resource:
        """Resolve ``('apps/v1', 'Deployment')``, ``('v1', 'secrets')``, a short name... to a declared resource."""
        group, _, version = api_version.rpartition("/")
        for res in self._get_resources():
            info = self.resources[res] if res in self.resources else kmock.ResourceInfo()
            names = {res.plural, info.kind, info.singular, *info.shortnames}
            if (res.group, res.version) == (group, version) and kind_or_plural in names:
                return res
        raise LookupError(f"no resource {kind_or_plural!r} in {api_version!r}")

    # --- request routing --------------------------------------------------------------------------

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        # Bypass kmock's stateful _handle (replaced by _write), keep its reactions & fallbacks: a write to a
        # declared resource is stored first, then answered by a user's reaction if any, else by _serve_written.
        res = request.resource
        result = self._write(request) if res is not None and res.plural and res in self._get_resources() else None
        if result is None:
            return await super(kmock.KubernetesEmulator, self)._handle(request)
        self._results[id(request)] = result
        try:
            return await super(kmock.KubernetesEmulator, self)._handle(request)
        finally:
            self._results.pop(id(request), None)

    async def _serve_written(self, request: rendering.Request) -> rendering.Payload:
        if id(request) not in self._results:
            raise kmock.KubernetesEndpointNotFoundError()
        status, body = self._results[id(request)]
        return rendering.Response(status=status, payload=body)  # [G5] 201 on creation

    _serve_create = _serve_update = _serve_delete = _serve_written

    async def _serve_version(self, request: rendering.Request) -> rendering.Payload:
        result = await super()._serve_version(request)
        assert isinstance(result, dict)
        result["groupVersion"] = result["groupVersion"].lstrip("/")  # [G6] core is 'v1', not '/v1'
        return result

    async def _serve_fetch(self, request: rendering.Request) -> rendering.Payload:
        res, info = self._resource(request)
        obj = self._get(self._key(res, info, request.namespace, request.name))
        if obj is None:
            raise api_error(404, "NotFound", f"{res.plural} {request.name!r} not found")
        return rendering.Response(status=200, payload=obj)

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        res, info = self._resource(request)
        matches = self._matcher(request)
        items = self._live(res, matches)
        return rendering.Response(
            status=200,
            payload={  # [G6] kind & apiVersion; [G7] selectors
                "apiVersion": api_version_of(res),
                "kind": f"{info.kind or 'Object'}List",
                "metadata": {"resourceVersion": str(self._rv)},
                "items": items,
            },
        )

    # [G4] kmock's is an async generator; this returns the stream inside a Response (for its content type).
    async def _serve_watch(self, request: rendering.Request) -> rendering.Payload:  # type: ignore[override]
        res, info = self._resource(request)
        matches = self._matcher(request)
        params = request.params
        since = params.get("resourceVersion") or "0"
        if not since.isdigit():
            raise api_error(400, "BadRequest", f"invalid resourceVersion: {since!r}")
        if since != "0" and int(since) < self._expired_below:  # like the real API: an ERROR event, 410
            message = f"too old resource version: {since} ({self._expired_below})"
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "code": 410,
                "reason": "Expired",
                "message": message,
            }
            payload = (b"", {"type": "ERROR", "object": status})
            return rendering.Response(status=200, headers={"Content-Type": "application/json"}, payload=payload)
        if since != "0":  # replay what happened after N, translated through the selectors
            replayed = [self._translate(ev, res, matches) for ev in self._history if ev.rv > int(since)]
            initial: list[JSON] = [event for event in replayed if event is not None]
        else:  # "most recent": a snapshot of synthetic ADDED events
            initial = [{"type": "ADDED", "object": obj} for obj in self._live(res, matches)]
        if params.get("sendInitialEvents") == "true":  # WatchList: a BOOKMARK marks the end of the snapshot
            annotations = {"k8s.io/initial-events-end": "true"}
            bookmark = {
                "kind": info.kind,
                "apiVersion": api_version_of(res),
                "metadata": {"resourceVersion": str(self._rv), "annotations": annotations},
            }
            initial.append({"type": "BOOKMARK", "object": bookmark})
        queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()
        self._watchers.add(queue)  # subscribed in the same synchronous step as the snapshot: no gap
        seconds = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
        stream = self._stream(queue, initial, res, matches, seconds)
        return rendering.Response(status=200, headers={"Content-Type": "application/json"}, payload=stream)

    async def _stream(
        self,
        queue: asyncio.Queue[WatchEvent | None],
        initial: list[JSON],
        res: kmock.resource,
        matches: Callable[[JSON], bool],
        seconds: float | None,  # ?timeoutSeconds=N: end the stream after N seconds
    ) -> AsyncIterator[rendering.Payload]:
        loop = asyncio.get_running_loop()
        deadline = None if seconds is None else loop.time() + seconds
        try:
            yield b""  # send the headers now, even if nothing happens for a while
            for event in initial:
                yield event
            while True:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    return
                try:
                    item = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    return
                if item is None:
                    return
                translated = self._translate(item, res, matches)
                if translated is not None:
                    yield translated
        finally:
            self._watchers.discard(queue)

    @staticmethod
    def _translate(ev: WatchEvent, res: kmock.resource, matches: Callable[[JSON], bool]) -> JSON | None:
        """As the real API: an object entering/leaving a selector shows as ADDED/DELETED."""
        if ev.resource != res:
            return None
        now_in, was_in = matches(ev.object), ev.old is not None and matches(ev.old)
        if ev.type == "MODIFIED" and now_in != was_in:
            return {"type": "ADDED" if now_in else "DELETED", "object": ev.object}
        return {"type": ev.type, "object": ev.object} if now_in else None

    def _matcher(self, request: rendering.Request) -> Callable[[JSON], bool]:
        labels = label_matcher(request.params.get("labelSelector", ""))
        fields = field_matcher(request.params.get("fieldSelector", ""))

        def matches(obj: JSON) -> bool:
            meta = obj.get("metadata", {})
            return (
                (request.namespace is None or meta.get("namespace") == request.namespace)
                and (request.name is None or meta.get("name") == request.name)
                and labels(meta.get("labels") or {})
                and fields(obj)
            )

        return matches

    # --- the state --------------------------------------------------------------------------------

    def _resource(self, request: rendering.Request) -> tuple[kmock.resource, kmock.ResourceInfo]:
        res = request.resource
        if res is None or res not in self._get_resources():
            raise api_error(404, "NotFound", f"the server could not find the requested resource: {request.url.path}")
        return res, (self.resources[res] if res in self.resources else kmock.ResourceInfo())

    @staticmethod
    def _key(res: kmock.resource, info: kmock.ResourceInfo, namespace: str | None, name: str | None) -> Key:
        if info.namespaced is False and namespace is not None:
            raise api_error(404, "NotFound", f"{res.plural} is not namespaced")
        if name is None:
            raise api_error(405, "MethodNotAllowed", "a name is required")
        return res, namespace, name

    def _live(self, res: kmock.resource, matches: Callable[[JSON], bool]) -> list[JSON]:
        found = [obj.raw for (r, _, _), obj in self.objects.items() if r == res and not obj.deleted]
        found = [copy.deepcopy(obj) for obj in found if matches(obj)]
        return sorted(found, key=lambda obj: (obj["metadata"].get("namespace") or "", obj["metadata"]["name"]))

    def _get(self, key: Key) -> JSON | None:
        if key not in self.objects or self.objects[key].deleted:
            return None
        return copy.deepcopy(self.objects[key].raw)

    def _write(self, request: rendering.Request) -> tuple[int, JSON] | None:
        method, name, sub = request.method, request.name, request.subresource
        if method == enums.method.POST and name is None:
            return self._create(request, request.data)
        if method not in {enums.method.PUT, enums.method.PATCH, enums.method.DELETE} or name is None:
            return None
        res, info = self._resource(request)
        key = self._key(res, info, request.namespace, name)
        old = self._get(key)
        if sub is not None and (sub != "status" or "status" not in info.subresources or method == enums.method.DELETE):
            raise api_error(404, "NotFound", f"no subresource {sub!r} for {res.plural}")
        content_type = next((v for k, v in request.headers.items() if k.lower() == "content-type"), "")
        content_type = content_type.split(";")[0].strip().lower()
        body = yaml.safe_load(request.text) if content_type == APPLY and request.data is None else request.data
        if method == enums.method.PATCH and content_type == APPLY and old is None and sub is None:
            return self._create(request, body)  # [G7] server-side apply creates a missing object
        if old is None:
            raise api_error(404, "NotFound", f"{res.plural} {name!r} not found")
        if method == enums.method.DELETE:
            return 200, self._delete(key, old, body)
        if method == enums.method.PUT:
            new = body
        elif content_type == JSON_PATCH:
            try:
                new = jsonpatch.apply_patch(old, body)
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
                raise api_error(422, "Invalid", f"the JSON patch cannot be applied: {e}") from e  # [G1]
        else:  # merge-patch; strategic-merge and apply are approximated by it
            if not isinstance(body, dict):
                raise api_error(400, "BadRequest", "the patch must be a JSON object")
            new = merge_patch(old, body)
        if not isinstance(new, dict):
            raise api_error(400, "BadRequest", "the body must be a JSON object")
        given_rv = (new.get("metadata") or {}).get("resourceVersion")
        stale = given_rv not in (None, "", old["metadata"]["resourceVersion"])
        if stale and content_type != JSON_PATCH:  # [G1] (JSON patches use `test` ops for that)
            raise api_error(409, "Conflict", f"the object has been modified; resourceVersion {given_rv} is stale")
        if sub == "status":  # [G8] /status changes the status only ...
            new = _with_status(old, new.get("status"))
        elif "status" in info.subresources:  # ... and the main resource everything but the status
            new = _with_status(new, old.get("status"))
        return 200, self._commit(key, old, self._keep_server_fields(old, new))

    def _create(self, request: rendering.Request, body: Any) -> tuple[int, JSON]:
        res, info = self._resource(request)
        if not isinstance(body, dict):
            raise api_error(400, "BadRequest", "the body must be a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        namespace = (request.namespace or meta.get("namespace")) if info.namespaced is not False else None
        if request.namespace and meta.get("namespace") not in (None, request.namespace):
            raise api_error(400, "BadRequest", "the namespace of the object does not match the URL")
        if namespace is not None:
            meta["namespace"] = namespace  # [P4]
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
            meta["name"] = meta["generateName"] + suffix
        if request.name is not None and meta.get("name") not in (None, request.name):
            raise api_error(400, "BadRequest", "the name of the object does not match the URL")
        meta["name"] = meta.get("name") or request.name
        if not meta["name"]:
            raise api_error(422, "Invalid", "metadata.name or metadata.generateName is required")
        key = self._key(res, info, namespace, meta["name"])
        if self._get(key) is not None:
            raise api_error(409, "AlreadyExists", f"{res.plural} {meta['name']!r} already exists")
        obj.setdefault("apiVersion", api_version_of(res))
        obj.setdefault("kind", info.kind)
        if "status" in info.subresources:
            obj.pop("status", None)  # [G8] the status is not settable on creation
        for field in ("resourceVersion", "deletionTimestamp", "uid", "generation"):
            meta.pop(field, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now())  # [G1]
        return 201, self._commit(key, None, obj)

    def _delete(self, key: Key, old: JSON, options: Any) -> JSON:
        preconditions = (options.get("preconditions") or {}) if isinstance(options, dict) else {}
        for field in ("uid", "resourceVersion"):
            if preconditions.get(field) not in (None, old["metadata"][field]):
                raise api_error(409, "Conflict", f"precondition failed: {field}")
        if not old["metadata"].get("finalizers"):
            return self._remove(key, old)
        if old["metadata"].get("deletionTimestamp"):
            return old
        new = copy.deepcopy(old)
        new["metadata"]["deletionTimestamp"] = now()
        return self._commit(key, old, new)

    @staticmethod
    def _keep_server_fields(old: JSON, new: JSON) -> JSON:
        new = copy.deepcopy(new)
        meta = new.setdefault("metadata", {})
        for field in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "generation"):
            if field in old["metadata"]:
                meta[field] = old["metadata"][field]
            else:
                meta.pop(field, None)
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        return new

    def _commit(self, key: Key, old: JSON | None, new: JSON) -> JSON:
        """Store a created/changed object: generation, resourceVersion, the watch event. [G1]"""
        res = key[0]
        if res == CRDS:
            self._register_crd(new)  # [G9]
        meta = new["metadata"]
        if old is None:
            meta["generation"] = 1
        else:
            spec_changed = {k: v for k, v in old.items() if k not in {"metadata", "status"}} != {
                k: v for k, v in new.items() if k not in {"metadata", "status"}
            }
            # the real API also bumps the generation when it sets deletionTimestamp (graceful deletion)
            deleting = bool(meta.get("deletionTimestamp")) and not old["metadata"].get("deletionTimestamp")
            meta["generation"] = old["metadata"].get("generation", 1) + int(spec_changed or deleting)
            if new == old:
                return old  # a no-op write: no new resourceVersion, no event (as the real API)
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        if key in self.objects:
            self.objects[key].history.append(copy.deepcopy(new))
        else:
            self.objects[key] = copy.deepcopy(new)
        self._emit(WatchEvent(self._rv, res, "ADDED" if old is None else "MODIFIED", copy.deepcopy(new), old))
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._remove(key, new)  # the last finalizer is gone: the deletion completes
        return new

    def _remove(self, key: Key, old: JSON) -> JSON:
        if key[0] == CRDS:
            self._register_crd(old, remove=True)
        self._rv += 1
        gone = copy.deepcopy(old)
        gone["metadata"]["resourceVersion"] = str(self._rv)
        self.objects[key].delete()
        self._emit(WatchEvent(self._rv, key[0], "DELETED", gone, None))  # [G4] DELETE emits DELETED
        return gone

    def _emit(self, event: WatchEvent) -> None:
        self._history.append(event)
        if len(self._history) > self.history_limit:
            self._expired_below = self._history.pop(0).rv
        for queue in self._watchers:
            queue.put_nowait(event)

    def _register_crd(self, crd: JSON, *, remove: bool = False) -> None:
        """[G9] Serve the CRD's resource as declared (scope, names, subresources); mark the CRD Established."""
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        for version in spec.get("versions") or []:
            res = kmock.resource(spec.get("group", ""), version["name"], names.get("plural"))
            if remove or not version.get("served", True):
                if res in self.resources:
                    del self.resources[res]
                continue
            self.resources[res] = kmock.ResourceInfo(
                kind=names.get("kind"),
                singular=names.get("singular") or str(names.get("kind", "")).lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                shortnames=names.get("shortNames") or [],
                categories=names.get("categories") or [],
                verbs=CRD_VERBS,
                subresources={"status"} & set(version.get("subresources") or {}),  # no /scale emulated
            )
        if not remove:
            old_conditions = {c["type"]: c for c in (crd.get("status") or {}).get("conditions") or []}
            conditions = [
                old_conditions.get(kind)
                or {"type": kind, "status": "True", "reason": reason, "message": message, "lastTransitionTime": now()}
                for kind, reason, message in [
                    ("NamesAccepted", "NoConflicts", "no conflicts found"),
                    ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                ]
            ]
            stored = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
            crd["status"] = {"acceptedNames": names, "storedVersions": stored, "conditions": conditions}
