"""The JSON Schema keywords an SDK parameter declares (``Param(schema=...)``), enforced at dispatch.

The catalog and the live OpenAPI document publish each parameter's schema; a parameter whose
``Param`` adds keywords (``minimum``, ``maximum``, ``pattern``, ``enum``, ``minLength``,
``maxItems``, ``items``, ...) is checked against that whole published schema (JSON Schema 2020-12,
the dialect of OpenAPI 3.1) after its type was, so a value the document refuses never reaches the
command. Parameters without such keywords cost nothing here.

An error names the parameter, where in its value (``statements/0``), the keyword and what the schema
requires of it, never the value itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from connector_proxy.parameters import ParameterInfo

_RULE_CHARS = 200


@dataclass(frozen=True)
class Constraint:
    parameter: str
    validator: Draft202012Validator

    def problem(self, value: Any) -> str | None:
        """What ``value`` breaks (without the value), or None."""
        error = best_match(self.validator.iter_errors(value))
        if error is None:
            return None
        where = "/".join(str(part) for part in error.absolute_path)
        rule = json.dumps(error.validator_value, ensure_ascii=False, default=str)
        if len(rule) > _RULE_CHARS:
            rule = rule[:_RULE_CHARS] + "..."
        return f"{self.parameter}{'/' + where if where else ''}: must satisfy {error.validator} {rule}"


def constraints_of(parameters: Sequence[ParameterInfo]) -> tuple[Constraint, ...]:
    """A checker for each parameter whose ``Param`` declared schema keywords."""
    found = []
    for parameter in parameters:
        if parameter.constrained:
            Draft202012Validator.check_schema(parameter.schema)
            found.append(Constraint(parameter.id, Draft202012Validator(parameter.schema)))
    return tuple(found)


def problems(constraints: Sequence[Constraint], values: Mapping[str, Any]) -> list[str]:
    """What the given ``values`` (JSON, as they arrived) break; absent parameters are not checked."""
    found = []
    for constraint in constraints:
        if constraint.parameter in values:
            problem = constraint.problem(values[constraint.parameter])
            if problem is not None:
                found.append(problem)
    return found
