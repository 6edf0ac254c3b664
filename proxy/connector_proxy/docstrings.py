"""Descriptions from community command classes' docstrings (reST field lists).

A class docstring such as::

    Send a message.

    :param channel: Where to post it,
        e.g. ``#general``.
    :type channel: str

describes the command as ``Send a message.`` and its ``channel`` parameter as
``Where to post it, e.g. ``#general``.``. Fields in the ``__init__`` docstring
count too (the class's own win). The field list is parsed by ``docstring_parser``;
a docstring it cannot parse, or one whose "fields" are really reST roles at the
start of a line (``:class:`Foo` ...``), gives no parameter descriptions and its
whole text as the description, as before. ``docstring_parser`` (all its styles' parsers) is
imported by the first community class read, not by a proxy serving only SDK connectors.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field

# The reST field names that document a parameter (``:type name:`` is parsed but not used).
_PARAM_FIELDS = frozenset({"param", "parameter", "arg", "argument", "key", "keyword"})


@dataclass(frozen=True)
class Docstring:
    """A docstring split into its prose (``summary``) and its parameter fields."""

    summary: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)


def own_docstring(obj: object) -> str | None:
    """The docstring written on ``obj`` itself (never an inherited one), cleaned of indentation."""
    doc = getattr(obj, "__dict__", {}).get("__doc__")
    return inspect.cleandoc(doc) if isinstance(doc, str) and doc.strip() else None


def _one_paragraph_per_line(text: str) -> str:
    """Wrapped lines joined with spaces; blank lines still separate paragraphs."""
    paragraphs: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip():
            paragraphs[-1].extend(line.split())
        elif paragraphs[-1]:
            paragraphs.append([])
    return "\n\n".join(" ".join(words) for words in paragraphs if words)


def parse_docstring(text: str | None) -> Docstring:
    """Split a cleaned docstring into its prose and its ``:param name: text`` fields."""
    if not text:
        return Docstring()
    from docstring_parser import DocstringParam
    from docstring_parser.rest import parse as parse_rest

    try:
        parsed = parse_rest(text)
    except Exception:  # a malformed field list: the whole text, no fields
        return Docstring(summary=text)
    if not parsed.meta:
        return Docstring(summary=text)
    if any(len(m.args) == 1 and (m.description or "").startswith("`") for m in parsed.meta):
        return Docstring(summary=text)  # ":role:`target`" at a line start, not a field
    params: dict[str, str] = {}
    for meta in parsed.meta:
        if isinstance(meta, DocstringParam) and meta.args[0] in _PARAM_FIELDS and meta.description:
            described = _one_paragraph_per_line(meta.description)
            if described:
                params.setdefault(meta.arg_name, described)
    summary = (parsed.description or "").strip()
    return Docstring(summary=summary or None, params=params)


def class_docstring(cls: type) -> Docstring:
    """The class's own docstring, with the parameters its ``__init__``'s docstring documents added.

    Never raises: whatever goes wrong gives the class's own docstring and no parameter descriptions."""
    try:
        documented = parse_docstring(own_docstring(cls))
        init_doc = getattr(cls.__init__, "__doc__", None)  # type: ignore[misc]
        from_init = parse_docstring(inspect.cleandoc(init_doc)).params if isinstance(init_doc, str) else {}
    except Exception:
        return Docstring(summary=own_docstring(cls))
    if not from_init:
        return documented
    return Docstring(summary=documented.summary, params={**from_init, **documented.params})
