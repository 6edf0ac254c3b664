"""Attachments from the ``attachments`` parameter: ``{filename, content, content_type?}`` objects.

``content`` is standard base64 (whitespace and line breaks are ignored) or a base64 ``data:`` URI
(``data:application/pdf;base64,JVBERi0...``). The content type is ``content_type`` when given,
else the data URI's, else a guess from the file name's extension (the standard library's
built-in table, the same on every system), else ``application/octet-stream``. Of a content
type's parameters only ``charset`` is kept.

Size limits apply before anything is decoded: base64 never encodes to fewer characters than it
decodes from, so attachments whose base64 text alone exceeds the message size limit are refused
without decoding them. Messages name the attachment by position and file name, never its content.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from spiff_connector_email import errors
from spiff_connector_email.addresses import has_control_characters
from spiff_connector_email.settings import MAX_ATTACHMENTS, MAX_MESSAGE_BYTES
from spiff_connector_sdk import CommandError

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_FILENAME_LENGTH = 255
KEYS = frozenset({"filename", "content", "content_type"})

_MIME_CHARS = r"[A-Za-z0-9!#$&^_.+-]+"
_MEDIA_TYPE = re.compile(rf"^({_MIME_CHARS})/({_MIME_CHARS})$")
_CHARSET = re.compile(rf"^charset\s*=\s*\"?({_MIME_CHARS})\"?$", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
_NOT_ATTACHABLE = ("multipart", "message")
_TYPES = mimetypes.MimeTypes()  # the built-in table only: no system files, the same guesses everywhere


@dataclass(frozen=True)
class ContentType:
    """A checked ``type/subtype`` with its optional charset."""

    maintype: str
    subtype: str
    charset: str | None = None


@dataclass(frozen=True)
class Attachment:
    """One decoded attachment."""

    filename: str
    content_type: ContentType
    data: bytes = field(repr=False)


def _invalid(where: str, problem: str) -> CommandError:
    return CommandError(errors.INVALID_ATTACHMENT, f"{where}: {problem}")


def parse_content_type(value: str, where: str) -> ContentType:
    """``type/subtype`` with optional parameters, of which only ``charset`` is kept.

    :raises CommandError: ``InvalidAttachment`` when it is malformed or multipart/message.
    """
    media_type, *parameters = (part.strip() for part in value.split(";"))
    match = _MEDIA_TYPE.match(media_type)
    if match is None or has_control_characters(value):
        raise _invalid(where, "content_type must be of the form type/subtype, e.g. application/pdf")
    maintype, subtype = match.group(1).lower(), match.group(2).lower()
    if maintype in _NOT_ATTACHABLE:
        raise _invalid(where, f"{maintype}/* content cannot be attached as data (use application/octet-stream)")
    charset = None
    for parameter in parameters:
        found = _CHARSET.match(parameter)
        if found is not None:
            charset = found.group(1)
    return ContentType(maintype, subtype, charset)


def _guessed_type(filename: str) -> str:
    guessed, encoding = _TYPES.guess_type(filename, strict=False)
    return guessed if guessed is not None and encoding is None else DEFAULT_CONTENT_TYPE


def _split_data_uri(content: str, where: str) -> tuple[str | None, str]:
    """(media type or None, base64 payload) of a ``data:`` URI."""
    header, comma, payload = content[len("data:") :].partition(",")
    *media, encoding = header.split(";")
    if not comma or encoding.strip().lower() != "base64":
        raise _invalid(where, "a data: URI must be base64-encoded (data:<type>;base64,<data>)")
    media_type = ";".join(media).strip()
    return media_type or None, unquote(payload) if "%" in payload else payload


def _decode_base64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(where, "content is not valid base64") from None


def _filename(item: Mapping[str, Any], where: str) -> str:
    filename = item.get("filename")
    if not isinstance(filename, str) or not filename.strip():
        raise _invalid(where, "filename must be a non-empty string")
    if has_control_characters(filename) or len(filename) > MAX_FILENAME_LENGTH:
        raise _invalid(where, f"filename must be one line of at most {MAX_FILENAME_LENGTH} characters")
    return filename


def _checked_item(item: Any, where: str) -> tuple[str, str, str | None]:
    """(filename, content, content_type) of one attachment object."""
    if not isinstance(item, Mapping):
        raise _invalid(where, "must be an object {filename, content, content_type?}")
    unknown = sorted(str(key) for key in item if key not in KEYS)
    if unknown:
        raise _invalid(where, f"unknown key(s) {', '.join(map(repr, unknown))}: use filename, content, content_type")
    content, content_type = item.get("content"), item.get("content_type")
    if not isinstance(content, str):
        raise _invalid(where, "content must be a base64 string or a base64 data: URI")
    if content_type is not None and not isinstance(content_type, str):
        raise _invalid(where, "content_type must be a string")
    return _filename(item, where), content, content_type


@dataclass(frozen=True)
class _Encoded:
    """An attachment checked but not decoded yet."""

    filename: str
    base64_text: str = field(repr=False)
    content_type: ContentType
    where: str


def _encoded(item: Any, position: int) -> _Encoded:
    where = f"attachments[{position}]"
    filename, content, explicit_type = _checked_item(item, where)
    where = f"{where} ({filename!r})"
    uri_type, payload = _split_data_uri(content, where) if content[:5].lower() == "data:" else (None, content)
    content_type = parse_content_type(explicit_type or uri_type or _guessed_type(filename), where)
    return _Encoded(filename, _WHITESPACE.sub("", payload), content_type, where)


def decode_attachments(items: Sequence[Any] | None, *, max_attachments: int, max_bytes: int) -> list[Attachment]:
    """Check and decode the ``attachments`` parameter.

    :raises CommandError: ``InvalidAttachment`` for a malformed attachment or too many of them,
        ``MessageTooLarge`` when their base64 text alone exceeds ``max_bytes``.
    """
    if items is None:
        return []
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise CommandError(errors.INVALID_ATTACHMENT, "attachments must be a list of objects")
    if len(items) > max_attachments:
        raise CommandError(
            errors.INVALID_ATTACHMENT,
            f"{len(items)} attachments given, more than {MAX_ATTACHMENTS} allows ({max_attachments})",
        )
    encoded = [_encoded(item, position) for position, item in enumerate(items)]
    total = sum(len(item.base64_text) for item in encoded)
    if total > max_bytes:
        raise CommandError(
            errors.MESSAGE_TOO_LARGE,
            f"the attachments alone take {total} bytes encoded, more than {MAX_MESSAGE_BYTES} allows ({max_bytes})",
        )
    return [
        Attachment(item.filename, item.content_type, _decode_base64(item.base64_text, item.where)) for item in encoded
    ]
