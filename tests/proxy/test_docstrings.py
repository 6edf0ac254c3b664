"""Unit tests of connector_proxy.docstrings: a community class docstring's reST field list gives
parameter descriptions and is left out of the command description; anything the parser cannot
take gives the whole docstring, as before, and never an exception."""

from __future__ import annotations

import inspect
from typing import Any

import docstring_parser.rest
import pytest

from connector_proxy.docstrings import Docstring, class_docstring, own_docstring, parse_docstring


def test_fields_become_parameter_descriptions_and_leave_the_summary() -> None:
    text = inspect.cleandoc(
        """Post a message.

        It is sent as plain text.

        :param channel: Where to post it,
            for example ``#general``.
        :type channel: str
        :param str text: What to say.
        :keyword silent: Post quietly.
        :param empty:
        :returns: the message id.
        :raises ValueError: for an unknown channel.
        """
    )
    assert parse_docstring(text) == Docstring(
        summary="Post a message.\n\nIt is sent as plain text.",
        params={
            "channel": "Where to post it, for example ``#general``.",
            "text": "What to say.",
            "silent": "Post quietly.",
        },
    )


def test_a_multi_paragraph_field_keeps_its_paragraphs() -> None:
    text = ":param body: First paragraph,\n    wrapped.\n\n    Second one."
    assert parse_docstring(text) == Docstring(params={"body": "First paragraph, wrapped.\n\nSecond one."})


@pytest.mark.parametrize(
    "text",
    [
        "Summary.\n\n\n\nMore text after two blank lines: kept exactly.",
        "Summary only",
        # A reST role at a line start is not a field: nothing is cut.
        "Wraps a client.\n\n:class:`Client` does the work.\n:param x: not taken either",
        # Fields the parser rejects (three words before the colon).
        "Summary.\n\n:param too many words: nothing",
        # No closing colon.
        "Summary.\n\n:param",
    ],
    ids=["blank-lines", "one-line", "role", "malformed", "unterminated"],
)
def test_text_without_a_usable_field_list_is_the_summary_unchanged(text: str) -> None:
    assert parse_docstring(text) == Docstring(summary=text)


def test_no_docstring() -> None:
    assert parse_docstring(None) == Docstring()
    assert parse_docstring("") == Docstring()


def test_a_parser_failure_of_any_kind_gives_the_whole_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(text: str) -> Any:
        raise IndexError("parser bug")

    monkeypatch.setattr(docstring_parser.rest, "parse", broken)
    assert parse_docstring("Summary.\n\n:param x: y") == Docstring(summary="Summary.\n\n:param x: y")


class Documented:
    """Does things.

    :param a: From the class.
    :param b: The class wins.
    """

    def __init__(self, a: str, b: str, c: str) -> None:
        """:param b: Overridden by the class.
        :param c: From ``__init__``.
        """


class Inherited(Documented):
    pass


class InitOnly:
    def __init__(self, value: int) -> None:
        """Build it.

        :param value: From ``__init__``.
        """


def test_class_docstring_adds_the_init_fields() -> None:
    assert class_docstring(Documented) == Docstring(
        summary="Does things.",
        params={"a": "From the class.", "b": "The class wins.", "c": "From ``__init__``."},
    )
    # The class's own docstring only for the summary (as before); the inherited __init__'s fields.
    assert class_docstring(Inherited) == Docstring(
        summary=None, params={"b": "Overridden by the class.", "c": "From ``__init__``."}
    )
    # Without a class docstring there is no summary: __init__'s prose is about construction.
    assert class_docstring(InitOnly) == Docstring(summary=None, params={"value": "From ``__init__``."})


def test_class_docstring_without_init_or_docstring() -> None:
    class Bare:
        pass

    assert class_docstring(Bare) == Docstring()


def test_own_docstring_is_never_inherited() -> None:
    assert own_docstring(Documented) == inspect.cleandoc(Documented.__doc__ or "")
    assert own_docstring(Inherited) is None
