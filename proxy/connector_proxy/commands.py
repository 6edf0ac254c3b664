"""Commands the proxy can run in process: community classes and SDK functions."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from connector_proxy.binding import bind_parameters
from connector_proxy.connector_config import ConfigCheck
from connector_proxy.constraints import Constraint, constraints_of, problems
from connector_proxy.docstrings import class_docstring
from connector_proxy.errors import DispatchError, ErrorCode
from connector_proxy.execution import Runtime, command_raised, in_thread, run_guarded
from connector_proxy.invocation import parse_invocation
from connector_proxy.isolation import ClassCall, Raised, Refused, run_class_call
from connector_proxy.outcome import Outcome, dump_json, outcome_from_result, v2_envelope
from connector_proxy.parameters import SignatureInfo, describe_class_parameters, describe_function_parameters
from spiff_connector_sdk import CommandError, CommandSpec, Context, Result


class Command(Protocol):
    """Anything the registry can list and dispatch to."""

    @property
    def id(self) -> str: ...

    @property
    def connector(self) -> str: ...

    @property
    def source(self) -> str:
        """Where the command comes from (for diagnostics)."""
        ...

    def catalog_entry(self) -> dict[str, Any]: ...

    async def run(self, body: bytes, runtime: Runtime) -> Outcome:
        """Run the command for a raw ``/v1/do`` request body."""
        ...


def _catalog_entry(command_id: str, signature: SignatureInfo, description: str | None, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": command_id, "parameters": [p.catalog_entry() for p in signature.parameters]}
    if description:
        entry["description"] = description
    entry.update(extra)
    return entry


@dataclass(frozen=True)
class ClassCommand:
    """A community command: ``Cls(**params).execute(config, task_data)``, or
    ``execute_async(config, task_data, callback_url=...)`` (answered with 202) when the class has
    it and spiff-arena sent a callback URL. A sync class runs in a worker process
    (:mod:`connector_proxy.isolation`) unless the runtime has none; an async one in the event loop.

    The catalog entry adds, beyond the reference proxy's keys, the class docstring's prose as the
    ``description`` (its ``:param:`` fields describe the parameters instead) and, for a class with
    ``execute_async``, ``accepts_callback: true``, the key SDK commands declared with
    ``accepts_callback=True`` carry."""

    id: str
    connector: str
    cls: type
    signature: SignatureInfo = field(repr=False)
    description: str | None = None
    accepts_callback: bool = False

    @classmethod
    def from_class(cls, connector: str, command_class: type) -> ClassCommand:
        return cls(
            id=f"{connector}/{command_class.__name__}",
            connector=connector,
            cls=command_class,
            signature=describe_class_parameters(command_class),
            description=class_docstring(command_class).summary,
            accepts_callback=callable(getattr(command_class, "execute_async", None)),
        )

    @property
    def source(self) -> str:
        return f"{self.cls.__module__}.{self.cls.__qualname__}"

    @property
    def runs_in_worker(self) -> bool:
        """Whether a runtime with worker processes runs it there: its ``execute`` is not async."""
        return not inspect.iscoroutinefunction(getattr(self.cls, "execute", None))

    def catalog_entry(self) -> dict[str, Any]:
        extra = {"accepts_callback": True} if self.accepts_callback else {}
        return _catalog_entry(self.id, self.signature, self.description, **extra)

    async def run(self, body: bytes, runtime: Runtime) -> Outcome:
        invocation = parse_invocation(body)
        kwargs = bind_parameters(self.id, self.signature, invocation.params)
        accepted = invocation.callback_url is not None and self.accepts_callback
        method_name = "execute_async" if accepted else "execute"
        method = getattr(self.cls, method_name, None)
        if not callable(method):
            raise DispatchError(
                500, ErrorCode.INVALID_COMMAND_RESULT, f"Command {self.id} has no {method_name} method."
            )

        call = ClassCall(
            command_id=self.id,
            module=self.cls.__module__,
            qualname=self.cls.__qualname__,
            method=method_name,
            kwargs=kwargs,
            config=runtime.config,
            task_data=invocation.task_data,
            callback_url=invocation.callback_url if accepted else None,
        )
        sensitive = (invocation.params,)
        if inspect.iscoroutinefunction(method):  # on the event loop

            async def awaited() -> Any:
                return await call.invoke(self.cls(**kwargs))

            result = await run_guarded(self.id, runtime, awaited, sensitive)
            return outcome_from_result(result, self.id, accepted=accepted)

        async def blocking() -> Outcome | Refused | Raised:
            if runtime.isolation is not None:
                return await runtime.isolation.run(call)
            return await in_thread(runtime, lambda: run_class_call(call))

        # What the worker (process or thread) sends back is an answer, a dispatch error or what
        # the command raised, scrubbed here.
        done = await run_guarded(self.id, runtime, blocking, sensitive)
        if isinstance(done, Refused):
            raise DispatchError(done.status, done.code, done.message)
        if isinstance(done, Raised):
            raise command_raised(self.id, done.name, done.text, done.traceback, (*sensitive, runtime.config))
        return done


def _validation_model(command_id: str, func: Callable[..., Any]) -> type[BaseModel]:
    """A pydantic model for the parameters (validated strictly, see ``SdkCommand._validated``);
    fields are aliased so parameter names
    like ``json`` or ``schema`` cannot collide with pydantic's own attributes."""
    signature = inspect.signature(func)
    hints = inspect.get_annotations(func, eval_str=True)
    fields: dict[str, Any] = {}
    for index, (name, param) in enumerate(list(signature.parameters.items())[1:]):
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        annotation = hints.get(name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[f"p{index}"] = (annotation, Field(default, alias=name))
    config = ConfigDict(extra="allow", arbitrary_types_allowed=True)
    model: type[BaseModel] = create_model(f"Params_{command_id.replace('/', '_')}", __config__=config, **fields)
    return model


def _validation_message(command_id: str, error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_input=False, include_url=False)[:10]:
        where = ".".join(str(x) for x in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    return f"Invalid parameter(s) for {command_id}: " + "; ".join(parts) + "."


@dataclass(frozen=True)
class SdkCommand:
    """A command declared with the SDK: ``func(ctx, **params)`` returning a ``Result``.

    ``config``: its connector's typed configuration, when the connector declares a model; while
    that is invalid, every call is refused with ``connector_misconfigured``."""

    id: str
    connector: str
    spec: CommandSpec
    signature: SignatureInfo = field(repr=False)
    model: type[BaseModel] = field(repr=False)
    is_async: bool = False
    constraints: tuple[Constraint, ...] = field(default=(), repr=False)
    config: ConfigCheck | None = field(default=None, repr=False)

    @classmethod
    def from_spec(cls, connector: str, spec: CommandSpec, config: ConfigCheck | None = None) -> SdkCommand:
        command_id = f"{connector}/{spec.name}"
        signature = describe_function_parameters(spec.func)
        return cls(
            id=command_id,
            connector=connector,
            spec=spec,
            signature=signature,
            model=_validation_model(command_id, spec.func),
            is_async=inspect.iscoroutinefunction(spec.func),
            constraints=constraints_of(signature.parameters),
            config=config,
        )

    @property
    def source(self) -> str:
        return f"{self.spec.func.__module__}.{self.spec.func.__qualname__}"

    def catalog_entry(self) -> dict[str, Any]:
        extra = {"accepts_callback": True} if self.spec.accepts_callback else {}
        return _catalog_entry(self.id, self.signature, self.spec.description, **extra)

    def _validated(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Strict JSON types, what the catalog's schemas and the live OpenAPI document say: ``"2"``
        is no ``int`` and ``0`` no ``bool`` (an ``int`` is a ``float``; ISO strings are dates). The
        values are validated as the JSON they arrived as, so strictness never refuses a JSON
        form (an enum's value, a date string) that the type takes."""
        try:
            validated = self.model.model_validate_json(dump_json(kwargs, self.id), strict=True)
        except ValidationError as error:
            raise DispatchError(400, ErrorCode.INVALID_PARAMETER, _validation_message(self.id, error)) from None
        broken = problems(self.constraints, kwargs) if self.constraints else None
        if broken:
            message = f"Invalid parameter(s) for {self.id}: " + "; ".join(broken[:10]) + "."
            raise DispatchError(400, ErrorCode.INVALID_PARAMETER, message)
        values = {info.alias or name: getattr(validated, name) for name, info in type(validated).model_fields.items()}
        values.update(validated.model_extra or {})
        return values

    async def run(self, body: bytes, runtime: Runtime) -> Outcome:
        if self.config is not None and not self.config.valid:
            raise self.config.refusal(self.id)
        invocation = parse_invocation(body)
        kwargs = self._validated(bind_parameters(self.id, self.signature, invocation.params))
        ctx = Context(
            config=runtime.config,
            task_data=invocation.task_data,
            callback_url=invocation.callback_url,
            process_instance_id=invocation.process_instance_id,
            process_model_identifier=invocation.process_model_identifier,
            task_id=invocation.task_id,
            typed_config=self.config.instance if self.config is not None else None,
        )
        func = self.spec.func

        async def work() -> Any:
            try:
                if self.is_async:
                    return await func(ctx, **kwargs)
                return await in_thread(runtime, lambda: func(ctx, **kwargs))
            except CommandError as error:
                return error

        result = await run_guarded(self.id, runtime, work, (invocation.params, kwargs))
        if isinstance(result, CommandError):
            envelope = v2_envelope(
                result.body if result.body is not None else {},
                http_status=result.http_status,
                error={"error_code": result.code, "message": result.message},
                logs=ctx.logs,
            )
            return Outcome.of_command(200, dump_json(envelope, self.id), result.code)
        if isinstance(result, Result):
            error = {"error_code": result.error.code, "message": result.error.message} if result.error else None
            envelope = v2_envelope(
                result.body,
                mimetype=result.mimetype,
                http_status=result.http_status,
                headers=result.headers,
                error=error,
                logs=ctx.logs,
            )
            envelope.update(result.extra)
            body = dump_json(envelope, self.id)
            code = result.error.code if result.error else None
            return Outcome.of_command(202 if result.accepted else 200, body, code, result.http_status)
        return outcome_from_result(result, self.id)
