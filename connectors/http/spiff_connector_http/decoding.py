"""Decoding a response body per its ``Content-Encoding``, as httpx (which the connector used before) did.

``gzip`` and ``deflate`` (zlib-wrapped or raw) are decoded, several encodings in reverse order;
``identity`` and encodings this module does not know (``br``, ``zstd``) are passed through
as they are. The connector asks for ``gzip, deflate`` only (``Accept-Encoding``). A body that
does not decode raises :class:`DecodingError`.

Each chunk decodes into pieces of at most :data:`MAX_PIECE` bytes, so a small compressed chunk
that expands hugely is counted against the response size limit piece by piece.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from typing import Protocol

MAX_PIECE = 1024 * 1024
ACCEPT_ENCODING = "gzip, deflate"


class DecodingError(Exception):
    """The body does not decode per its ``Content-Encoding``."""


class Decoder(Protocol):
    def decode(self, data: bytes) -> Iterator[bytes]: ...

    def flush(self) -> bytes: ...


class _Zlib:
    """``gzip`` (``wbits``: gzip header) or ``deflate`` (a zlib stream, else a raw one)."""

    def __init__(self, wbits: int, fallback: int | None = None) -> None:
        self._inner = zlib.decompressobj(wbits)
        self._fallback = fallback

    def decode(self, data: bytes) -> Iterator[bytes]:
        fallback, self._fallback = self._fallback, None
        try:
            piece = self._inner.decompress(data, MAX_PIECE)
        except zlib.error as exc:
            if fallback is None:
                raise DecodingError(str(exc)) from exc
            self._inner = zlib.decompressobj(fallback)
            yield from self.decode(data)
            return
        yield piece
        while self._inner.unconsumed_tail:
            try:
                piece = self._inner.decompress(self._inner.unconsumed_tail, MAX_PIECE)
            except zlib.error as exc:
                raise DecodingError(str(exc)) from exc
            yield piece

    def flush(self) -> bytes:
        try:
            return self._inner.flush()
        except zlib.error as exc:  # pragma: no cover - zlib's flush does not fail on truncated input
            raise DecodingError(str(exc)) from exc


class _Chain:
    """Several encodings: the last one applied is undone first."""

    def __init__(self, decoders: list[Decoder]) -> None:
        self._decoders = list(reversed(decoders))

    def decode(self, data: bytes) -> Iterator[bytes]:
        for decoder in self._decoders:
            data = b"".join(decoder.decode(data))
        yield data

    def flush(self) -> bytes:
        data = b""
        for decoder in self._decoders:
            data = b"".join(decoder.decode(data)) + decoder.flush()
        return data


def _decoder_for(name: str) -> Decoder | None:
    if name == "gzip":
        return _Zlib(zlib.MAX_WBITS | 16)
    if name == "deflate":
        return _Zlib(zlib.MAX_WBITS, fallback=-zlib.MAX_WBITS)
    return None


def decoder_for(headers: Mapping[str, str]) -> Decoder | None:
    """The decoder for a response with ``headers`` (lower-case names); None when there is nothing to decode."""
    encoding = headers.get("content-encoding")
    if not encoding:
        return None
    decoders = [d for d in (_decoder_for(part.strip().lower()) for part in encoding.split(",")) if d is not None]
    if not decoders:
        return None
    return decoders[0] if len(decoders) == 1 else _Chain(decoders)
