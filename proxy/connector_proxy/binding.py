"""Checking a call's parameters against a command's signature."""

from __future__ import annotations

from typing import Any

from connector_proxy.errors import DispatchError, ErrorCode
from connector_proxy.parameters import SignatureInfo

_MAX_NAMES = 10
_MAX_NAME_LENGTH = 64


def _names(names: list[str]) -> str:
    shown = [n if len(n) <= _MAX_NAME_LENGTH else n[:_MAX_NAME_LENGTH] + "..." for n in sorted(names)[:_MAX_NAMES]]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def bind_parameters(command_id: str, signature: SignatureInfo, params: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments for the command, or a 400 naming (never echoing) the culprits.

    Parameters the catalog lists as optional but that have no default in Python are passed as
    ``None`` when absent (the reference proxy would crash with a TypeError there).
    """
    missing = [p.id for p in signature.parameters if p.required and p.passable and p.id not in params]
    if missing:
        raise DispatchError(
            400,
            ErrorCode.MISSING_PARAMETER,
            f"Command {command_id} is missing required parameter(s): {_names(missing)}.",
        )
    known = signature.names
    if not signature.accepts_any_keyword:
        unknown = [name for name in params if name not in known]
        if unknown:
            raise DispatchError(
                400,
                ErrorCode.UNKNOWN_PARAMETER,
                f"Command {command_id} does not take parameter(s): {_names(unknown)}. "
                f"It takes: {_names(sorted(known)) or 'no parameters'}.",
            )
    kwargs = dict(params)
    for param in signature.parameters:
        if param.fill_none_when_absent and param.passable and param.id not in kwargs:
            kwargs[param.id] = None
    return kwargs
