"""Unit tests of connector_proxy.parameters: the reference proxy's description rules (quirks
included) for community classes, the JSON Schema derivation, secrets, and the SDK describer."""

import inspect
import textwrap
from collections.abc import Callable
from typing import Annotated, Any, Literal, Optional, Union

import orjson
import pytest

from connector_proxy.parameters import (
    SignatureInfo,
    describe_class_parameters,
    describe_function_parameters,
    json_schema_for,
)
from spiff_connector_sdk import Context, Param

Described = list[tuple[str, str, bool]]

# No ``from __future__ import annotations`` here: the classes below need real annotation objects
# (string annotations are a case of their own).


def _class_with(params: list[inspect.Parameter], name: str = "Command") -> type:
    """A class whose ``__init__`` has exactly ``self`` + ``params`` (real annotation objects)."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        pass

    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    __init__.__signature__ = inspect.Signature([self_param, *params])  # type: ignore[attr-defined]
    __init__.__annotations__ = {p.name: p.annotation for p in params if p.annotation is not inspect.Parameter.empty}
    return type(name, (), {"__init__": __init__})


EMPTY = inspect.Parameter.empty


def p(
    name: str, annotation: Any = EMPTY, default: Any = EMPTY, kind: inspect._ParameterKind | None = None
) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.POSITIONAL_OR_KEYWORD if kind is None else kind, annotation=annotation, default=default
    )


VAR_POSITIONAL = inspect.Parameter.VAR_POSITIONAL
VAR_KEYWORD = inspect.Parameter.VAR_KEYWORD
KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY

# (case, parameters after self, expected (id, type, required) in order)
REFERENCE_CASES: list[tuple[str, list[inspect.Parameter], Described]] = [
    (
        "exact str/int/bool, no default: that type, required",
        [p("text", str), p("number", int), p("flag", bool)],
        [("text", "str", True), ("number", "int", True), ("flag", "bool", True)],
    ),
    (
        "a default makes any parameter optional",
        [p("text", str, "x"), p("number", int, 1), p("flag", bool, False), p("blob", dict, None)],
        [("text", "str", False), ("number", "int", False), ("flag", "bool", False), ("blob", "any", False)],
    ),
    (
        "no annotation: any",
        [p("value"), p("fallback", default=1)],
        [("value", "any", True), ("fallback", "any", False)],
    ),
    (
        "Optional[X] / X | None: X, never required (default or not)",
        [p("old", Optional[str]), p("new", int | None), p("flag", Optional[bool], None)],  # noqa: UP045
        [("old", "str", False), ("new", "int", False), ("flag", "bool", False)],
    ),
    (
        "generics: exactly one supported argument gives its name",
        [p("names", list[str]), p("pair", tuple[int, int]), p("flags", set[bool]), p("nested", list[list[str]])],
        [("names", "str", True), ("pair", "int", True), ("flags", "bool", True), ("nested", "any", True)],
    ),
    (
        "generics with unsupported or several arguments: any",
        [p("mapping", dict[str, int]), p("dicts", list[dict]), p("plain", dict), p("maybe", Optional[dict])],  # noqa: UP045
        [("mapping", "any", True), ("dicts", "any", True), ("plain", "any", True), ("maybe", "any", False)],
    ),
    (
        "unions of several supported types: any; None in the union: optional",
        [p("either", str | int), p("either_or_none", Union[str, int, None]), p("num", int | bool)],  # noqa: UP007
        [("either", "any", True), ("either_or_none", "any", False), ("num", "any", True)],
    ),
    (
        "a generic or union wrapped in Optional: any, optional",
        [p("maybe_list", list[str] | None), p("maybe_bool", bool | None)],
        [("maybe_list", "any", False), ("maybe_bool", "bool", False)],
    ),
    (
        "Any, object, float: any",
        [p("anything", Any), p("obj", object), p("ratio", float)],
        [("anything", "any", True), ("obj", "any", True), ("ratio", "any", True)],
    ),
    (
        "Annotated and Literal: any (their metadata/values are not types)",
        [p("annotated", Annotated[str, "meta"]), p("choice", Literal["a"]), p("choices", Literal["a", "b"])],
        [("annotated", "any", True), ("choice", "any", True), ("choices", "any", True)],
    ),
    (
        "Literal[..., None]: that None is a value, not NoneType: still required",
        [p("maybe_choice", Literal["a", None])],
        [("maybe_choice", "any", True)],
    ),
    (
        "Annotated with unhashable metadata: any (the reference would crash)",
        [p("weird", Annotated[str, {"unhashable": True}])],
        [("weird", "any", True)],
    ),
    (
        "string annotations (from __future__ import annotations): any, even 'str | None' is required",
        [p("text", "str"), p("maybe", "str | None"), p("count", "int", 1)],
        [("text", "any", True), ("maybe", "any", True), ("count", "any", False)],
    ),
    (
        "the annotation None (not NoneType): any, required",
        [p("nothing", None)],
        [("nothing", "any", True)],
    ),
    (
        "*args is listed as required any 'args'; keyword-only parameters are listed",
        [p("name", str), p("args", kind=VAR_POSITIONAL), p("flag", bool, False, KEYWORD_ONLY)],
        [("name", "str", True), ("args", "any", True), ("flag", "bool", False)],
    ),
    (
        "an annotated *args takes the annotation's type",
        [p("args", int, kind=VAR_POSITIONAL)],
        [("args", "int", True)],
    ),
    (
        "**options is listed as required any 'options'",
        [p("name", str), p("options", kind=VAR_KEYWORD)],
        [("name", "str", True), ("options", "any", True)],
    ),
    (
        "**kwargs is left out",
        [p("name", str), p("kwargs", kind=VAR_KEYWORD)],
        [("name", "str", True)],
    ),
    (
        "a plain parameter named kwargs is left out too (only the name counts)",
        [p("kwargs", str), p("other", str)],
        [("other", "str", True)],
    ),
]


def _described(info: SignatureInfo) -> Described:
    return [(x.id, x.type, x.required) for x in info.parameters]


@pytest.mark.parametrize(
    ("params", "expected"), [(c[1], c[2]) for c in REFERENCE_CASES], ids=[c[0] for c in REFERENCE_CASES]
)
def test_reference_rules(params: list[inspect.Parameter], expected: Described) -> None:
    assert _described(describe_class_parameters(_class_with(params))) == expected


def test_class_without_init_lists_args_from_object_init() -> None:
    class NoInit:
        def execute(self, config: Any, task_data: Any) -> dict[str, Any]:
            return {}

    info = describe_class_parameters(NoInit)
    assert _described(info) == [("args", "any", True)]
    # object.__init__ takes **kwargs, so dispatch accepts anything (as the reference does).
    assert info.accepts_any_keyword is True
    assert info.names == frozenset()


def test_real_future_annotations_module_gives_any() -> None:
    """The same as the string-annotation case, but from real source with the __future__ import."""
    source = textwrap.dedent(
        """
        from __future__ import annotations
        from typing import Optional

        class StringAnnotations:
            def __init__(self, text: str, maybe: Optional[str], flag: bool = False):
                pass
        """
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, "<future-annotations>", "exec"), namespace)
    info = describe_class_parameters(namespace["StringAnnotations"])
    assert _described(info) == [("text", "any", True), ("maybe", "any", True), ("flag", "any", False)]
    # The JSON Schema still comes from the resolved hints.
    schemas = {x.id: x.schema for x in info.parameters}
    assert schemas["text"] == {"type": "string"}
    assert schemas["flag"] == {"type": "boolean", "default": False}


def test_dispatch_flags() -> None:
    cls = _class_with(
        [
            p("required", str),
            p("optional_no_default", Optional[str]),  # noqa: UP045
            p("optional_default", str, "x"),
            p("args", kind=VAR_POSITIONAL),
            p("options", kind=VAR_KEYWORD),
        ]
    )
    info = describe_class_parameters(cls)
    by_id = {x.id: x for x in info.parameters}
    assert info.accepts_any_keyword is True
    assert info.names == frozenset({"required", "optional_no_default", "optional_default"})
    # Optional without a default: listed as not required, filled with None when absent.
    assert by_id["optional_no_default"].fill_none_when_absent is True
    assert by_id["optional_default"].fill_none_when_absent is False
    assert by_id["required"].fill_none_when_absent is False
    # *args / **options are listed but cannot be passed by name.
    assert by_id["args"].passable is False
    assert by_id["options"].passable is False
    assert by_id["args"].schema == {} and by_id["options"].schema == {}


def test_without_var_keyword_unknown_names_are_not_accepted() -> None:
    info = describe_class_parameters(_class_with([p("text", str)]))
    assert info.accepts_any_keyword is False
    assert info.names == frozenset({"text"})


def test_positional_only_is_listed_but_not_passable() -> None:
    class PositionalOnly:
        def __init__(self, value: str, /) -> None:
            self.value = value

    info = describe_class_parameters(PositionalOnly)
    assert _described(info) == [("value", "str", True)]
    assert info.parameters[0].passable is False


class Schemas:
    def __init__(
        self,
        payload: dict,
        tags: list[str],
        counts: dict[str, int],
        mode: Literal["fast", "slow"] = "fast",
        level: Literal[1, 2, 3] = 1,
        count: int = 3,
        note: Optional[str] = None,  # noqa: UP045
        sentinel: object = object(),
        password: str = "",
        api_key: Optional[str] = None,  # noqa: UP045
        client_secret: str = "",
        access_token: str = "",
        private_key: str = "",
        username: str = "",
    ) -> None:
        pass


def test_schema_derivation_from_class_hints() -> None:
    schemas = {x.id: x.schema for x in describe_class_parameters(Schemas).parameters}
    assert schemas["payload"]["type"] == "object"
    assert schemas["tags"] == {"type": "array", "items": {"type": "string"}}
    assert schemas["counts"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert schemas["mode"] == {"enum": ["fast", "slow"], "type": "string", "default": "fast"}
    assert schemas["level"] == {"enum": [1, 2, 3], "type": "integer", "default": 1}
    assert schemas["count"] == {"type": "integer", "default": 3}
    assert schemas["note"] == {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    # A default that is not JSON is left out of the schema.
    assert "default" not in schemas["sentinel"]
    assert all("title" not in s for s in schemas.values())


def test_secret_named_parameters_are_write_only() -> None:
    info = describe_class_parameters(Schemas)
    secret = {x.id for x in info.parameters if x.secret}
    write_only = {x.id for x in info.parameters if x.schema.get("writeOnly") is True}
    expected = {"password", "api_key", "client_secret", "access_token", "private_key"}
    assert secret == expected
    assert write_only == expected
    entries = {x.id: x.catalog_entry() for x in info.parameters}
    assert entries["password"] == {
        "id": "password",
        "type": "str",
        "required": False,
        "schema": entries["password"]["schema"],
    }
    assert "writeOnly" not in entries["username"]["schema"]


class Undocumented:
    def __init__(self, channel: str, count: int = 1, note: Optional[str] = None, *args: Any, **kwargs: Any) -> None:  # noqa: UP045
        pass


class Documented:
    """Post a message.

    :param channel: Where to post it,
        for example ``#general``.
    :type channel: str
    :param args: Extra words.
    :param kwargs: Not a catalog parameter (the reference leaves ``kwargs`` out).
    :param missing: Documented but not a parameter: ignored.
    """

    def __init__(self, channel: str, count: int = 1, note: Optional[str] = None, *args: Any, **kwargs: Any) -> None:  # noqa: UP045
        """:param count: How many times."""


def _reference_shape(info: SignatureInfo) -> bytes:
    """The parameters exactly as the reference proxy lists them: only ``id``, ``type``, ``required``."""
    entries = [x.catalog_entry() for x in info.parameters]
    return orjson.dumps([{k: entry[k] for k in entry if k in ("id", "type", "required")} for entry in entries])


def test_docstring_fields_describe_parameters_without_changing_the_reference_fields() -> None:
    documented = describe_class_parameters(Documented)
    undocumented = describe_class_parameters(Undocumented)
    reference = (
        b'[{"id":"channel","type":"str","required":true},{"id":"count","type":"int","required":false},'
        b'{"id":"note","type":"str","required":false},{"id":"args","type":"any","required":true}]'
    )
    assert _reference_shape(documented) == _reference_shape(undocumented) == reference
    assert documented.accepts_any_keyword is undocumented.accepts_any_keyword is True
    assert documented.names == undocumented.names
    entries = [x.catalog_entry() for x in documented.parameters]
    assert [e.get("description") for e in entries] == [
        "Where to post it, for example ``#general``.",
        "How many times.",
        None,
        "Extra words.",
    ]
    # The key and its place are the SDK parameters' (after ``required``, before ``schema``).
    assert list(entries[0]) == ["id", "type", "required", "description", "schema"]
    assert list(entries[2]) == ["id", "type", "required", "schema"]
    assert [x.schema for x in documented.parameters] == [x.schema for x in undocumented.parameters]


def test_a_param_marker_description_wins_over_the_docstring() -> None:
    class Marked:
        """:param value: From the docstring.
        :param other: From the docstring too.
        """

        def __init__(self, value: Annotated[str, Param("From Param")], other: Annotated[str, Param(secret=True)]):
            pass

    by_id = {x.id: x for x in describe_class_parameters(Marked).parameters}
    assert by_id["value"].description == "From Param"
    assert by_id["other"].description == "From the docstring too."


@pytest.mark.parametrize(
    ("hint", "default", "expected"),
    [
        (dict, EMPTY, {"type": "object", "additionalProperties": True}),
        (list[str], EMPTY, {"type": "array", "items": {"type": "string"}}),
        (Literal["a", "b"], "a", {"enum": ["a", "b"], "type": "string", "default": "a"}),
        (int, 5, {"type": "integer", "default": 5}),
        (bool, EMPTY, {"type": "boolean"}),
        (Any, EMPTY, {}),
        (EMPTY, 7, {"default": 7}),
        (EMPTY, EMPTY, {}),
        (list[str], ("x",), {"type": "array", "items": {"type": "string"}, "default": ["x"]}),
    ],
    ids=["dict", "list-str", "literal", "int-default", "bool", "any", "no-hint-default", "nothing", "tuple-default"],
)
def test_json_schema_for(hint: Any, default: Any, expected: dict[str, Any]) -> None:
    assert json_schema_for(hint, default) == expected


def test_json_schema_for_an_underivable_hint_is_anything() -> None:
    class Opaque:
        pass

    assert json_schema_for(Opaque) == {}


# --- SDK describer (typed first-party commands) ---


def sdk_command(
    ctx: Context,
    url: Annotated[str, Param("The URL to call", examples=("https://example.org",))],
    style: Literal["plain", "loud"] = "plain",
    level: Literal[1, 2] = 1,
    token: Annotated[str | None, Param("A token", secret=True)] = None,
    password: str = "",
    tags: list[str] | None = None,
    either: str | int = "x",
    **extra: Any,
) -> None:
    """An SDK command."""


def test_sdk_describer_types_and_metadata() -> None:
    info = describe_function_parameters(sdk_command)
    assert _described(info) == [
        ("url", "str", True),
        ("style", "str", False),
        ("level", "int", False),
        ("token", "str", False),
        ("password", "str", False),
        ("tags", "any", False),
        ("either", "any", False),
    ]
    by_id = {x.id: x for x in info.parameters}
    assert info.accepts_any_keyword is True
    assert by_id["url"].description == "The URL to call"
    # The description is the parameter's own key; the schema does not repeat it.
    assert by_id["url"].schema == {"type": "string", "examples": ["https://example.org"]}
    assert by_id["style"].schema["enum"] == ["plain", "loud"]
    assert by_id["token"].secret is True and by_id["token"].schema["writeOnly"] is True
    # SDK commands declare secrets explicitly with Param(secret=True); the name alone does not count.
    assert by_id["password"].secret is False and "writeOnly" not in by_id["password"].schema


def _no_context() -> None:
    pass


def _var_positional(ctx: Context, *values: str) -> None:
    pass


def _positional_only(ctx: Context, value: str, /) -> None:
    pass


@pytest.mark.parametrize("func", [_no_context, _var_positional, _positional_only])
def test_sdk_describer_rejects_unpassable_signatures(func: Callable[..., Any]) -> None:
    with pytest.raises(TypeError):
        describe_function_parameters(func)
