"""How a command's parameters are described in the catalog.

Two describers live here:

- :func:`describe_class_parameters` follows the reference proxy's rules for
  community ``connector_<name>`` packages *exactly*, quirks included, so a
  diagram built against the reference keeps working (see docs/connectors.md):
  parameters come from ``__init__``'s signature minus those named ``self`` and
  ``kwargs``; an annotation of ``str``/``int``/``bool`` gives that type, a union
  whose only supported member (ignoring ``None``) is one of them gives it too,
  anything else is ``any``; a parameter is required when it has no default and
  ``None`` is not part of its annotation. Beyond the reference, a ``:param name:``
  field of the class's (or ``__init__``'s) docstring gives the parameter its
  ``description`` (:mod:`connector_proxy.docstrings`).
- :func:`describe_function_parameters` describes SDK commands from their type
  hints (``Literal`` of strings is ``str``, ``Param`` metadata adds descriptions
  and ``writeOnly`` for secrets).

Both add a JSON Schema (``schema``) derived from the resolved type hints.
"""

from __future__ import annotations

import functools
import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import TypeAdapter

from connector_proxy.docstrings import class_docstring
from spiff_connector_sdk import Param

_NONE = type(None)
_SUPPORTED = {str, int, bool, _NONE}
_UNSUPPORTED = object()
_SKIPPED_NAMES = ("self", "kwargs")
_SECRET_NAME = re.compile(r"(password|passwd|secret|token|api_?key|private_?key|credential)", re.IGNORECASE)


@dataclass(frozen=True)
class ParameterInfo:
    """One parameter, as listed in the catalog and as checked on dispatch."""

    id: str
    type: str
    required: bool
    schema: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    secret: bool = False
    # How the value reaches the callable: a keyword the callable declares, or not passable at all
    # (``*args``), and what to pass when it is absent though not required.
    passable: bool = True
    fill_none_when_absent: bool = False
    # Its ``Param`` declared JSON Schema keywords: dispatch checks them (connector_proxy.constraints).
    constrained: bool = False

    def catalog_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": self.id, "type": self.type, "required": self.required}
        if self.description:
            entry["description"] = self.description
        entry["schema"] = self.schema
        return entry


@dataclass(frozen=True)
class SignatureInfo:
    """The parameters of a command plus whether it takes arbitrary keywords."""

    parameters: tuple[ParameterInfo, ...]
    accepts_any_keyword: bool

    @property
    def names(self) -> frozenset[str]:
        return frozenset(p.id for p in self.parameters if p.passable)


def reference_type_and_required(param: inspect.Parameter) -> tuple[str, bool]:
    """The reference proxy's ``param_annotation_desc`` rule, reproduced exactly."""
    annotation = param.annotation
    try:
        if annotation in _SUPPORTED:
            annotation_types = {annotation}
        else:
            annotation_types = {t if t in _SUPPORTED else _UNSUPPORTED for t in typing.get_args(annotation)}
    except TypeError:  # an unhashable annotation object; the reference crashes, we say "any"
        annotation_types = {_UNSUPPORTED}
    required = param.default is inspect.Parameter.empty and _NONE not in annotation_types
    annotation_types.discard(_NONE)
    type_name = "any"
    if len(annotation_types) == 1:
        only = annotation_types.pop()
        if only in _SUPPORTED:
            type_name = typing.cast(type, only).__name__
    return type_name, required


def _resolved_hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception:
        # Unresolvable string annotations: fall back to whatever objects are there.
        annotations = getattr(func, "__annotations__", {}) or {}
        return {k: v for k, v in annotations.items() if not isinstance(v, str)}


def _strip_annotated(hint: Any) -> tuple[Any, list[Any]]:
    if typing.get_origin(hint) is typing.Annotated:
        base, *metadata = typing.get_args(hint)
        return base, metadata
    return hint, []


def _json_default(value: Any) -> tuple[bool, Any]:
    try:
        return True, orjson.loads(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        return False, None


def _derived_schema(hint: Any) -> dict[str, Any]:
    try:
        schema = TypeAdapter(hint).json_schema(mode="validation")
    except Exception:
        return {}
    schema.pop("title", None)
    return schema


@functools.lru_cache(maxsize=1024)
def _cached_schema(hint: Any) -> bytes:
    return orjson.dumps(_derived_schema(hint))


def json_schema_for(hint: Any, default: Any = inspect.Parameter.empty) -> dict[str, Any]:
    """A JSON Schema for a type hint; ``{}`` (anything) when it cannot be derived.

    Derived schemas are cached per hint (registries with many commands repeat the same types)."""
    schema: dict[str, Any] = {}
    if hint is not inspect.Parameter.empty:
        try:
            schema = orjson.loads(_cached_schema(hint))
        except TypeError:  # an unhashable hint: derive it uncached
            schema = _derived_schema(hint)
    if default is not inspect.Parameter.empty:
        ok, value = _json_default(default)
        if ok:
            schema["default"] = value
    return schema


def _param_meta(metadata: list[Any]) -> Param | None:
    for item in metadata:
        if isinstance(item, Param):
            return item
    return None


def _finish_schema(schema: dict[str, Any], meta: Param | None, secret: bool) -> dict[str, Any]:
    if meta is not None:  # the description is the parameter's own key, not repeated in its schema
        if meta.examples:
            schema["examples"] = list(meta.examples)
        schema.update(meta.schema)
    if secret:
        schema["writeOnly"] = True
    return schema


def _described(
    param: inspect.Parameter,
    type_name: str,
    required: bool,
    hint: Any,
    *,
    secret_names: bool,
    documented: str | None = None,
) -> ParameterInfo:
    """One parameter's catalog entry. A ``Param(secret=...)`` decides secrecy; without one a
    ``writeOnly`` schema (e.g. ``SecretStr``) does, and, for community classes, a secret-looking name.
    The description is the ``Param``'s, else ``documented`` (from a docstring)."""
    base, metadata = _strip_annotated(hint)
    meta = _param_meta(metadata)
    is_var = param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    schema = {} if is_var else json_schema_for(base, param.default)
    if meta is not None:
        secret = meta.secret
    else:
        secret = bool(schema.get("writeOnly")) or (secret_names and bool(_SECRET_NAME.search(param.name)))
    return ParameterInfo(
        id=param.name,
        type=type_name,
        required=required,
        schema=_finish_schema(schema, meta, secret),
        description=(meta.description if meta else None) or documented,
        secret=secret,
        passable=not is_var and param.kind is not inspect.Parameter.POSITIONAL_ONLY,
        fill_none_when_absent=not required and param.default is inspect.Parameter.empty and not is_var,
        constrained=bool(meta is not None and meta.schema and not is_var),
    )


def describe_class_parameters(cls: type) -> SignatureInfo:
    """Describe a community command class from its ``__init__`` (reference rules), with the
    parameter descriptions its docstrings give."""
    init = cls.__init__  # type: ignore[misc]
    signature = inspect.signature(init)
    hints = _resolved_hints(init)
    documented = class_docstring(cls).params
    described: list[ParameterInfo] = []
    accepts_any_keyword = False
    for param in signature.parameters.values():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            accepts_any_keyword = True
        if param.name in _SKIPPED_NAMES:
            continue
        type_name, required = reference_type_and_required(param)
        hint = hints.get(param.name, param.annotation)
        described.append(
            _described(param, type_name, required, hint, secret_names=True, documented=documented.get(param.name))
        )
    return SignatureInfo(parameters=tuple(described), accepts_any_keyword=accepts_any_keyword)


def _sdk_type_name(hint: Any) -> tuple[str, bool]:
    """(type, optional) for an SDK parameter hint without ``Annotated``."""
    optional = False
    members: tuple[Any, ...] = (hint,)
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        members = tuple(m for m in typing.get_args(hint) if m is not _NONE)
        optional = len(members) != len(typing.get_args(hint))
    if len(members) != 1:
        return "any", optional
    only = members[0]
    if only in (str, int, bool):
        return typing.cast(type, only).__name__, optional
    if typing.get_origin(only) is typing.Literal:
        values = typing.get_args(only)
        for candidate in (bool, int, str):
            if values and all(type(v) is candidate for v in values):
                return candidate.__name__, optional
    return "any", optional


def describe_function_parameters(func: Callable[..., Any]) -> SignatureInfo:
    """Describe an SDK command function; its first positional parameter is the context."""
    signature = inspect.signature(func)
    hints = _resolved_hints(func)
    params = list(signature.parameters.values())
    if not params or params[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise TypeError(f"{func.__qualname__} must take the context as its first positional parameter")
    described: list[ParameterInfo] = []
    accepts_any_keyword = False
    for param in params[1:]:
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            accepts_any_keyword = True
            continue
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
            raise TypeError(f"{func.__qualname__}: parameter {param.name} must be passable by keyword")
        hint = hints.get(param.name, param.annotation)
        type_name, optional = _sdk_type_name(_strip_annotated(hint)[0])
        required = param.default is inspect.Parameter.empty and not optional
        described.append(_described(param, type_name, required, hint, secret_names=False))
    return SignatureInfo(parameters=tuple(described), accepts_any_keyword=accepts_any_keyword)
