"""What goes on the wire and how answers are read: URLs as parsed, headers as decoded, bodies as encoded."""

from __future__ import annotations

import gzip
import zlib

import httpx
import pytest

from spiff_connector_http.client import MAX_PROXY_LOOKUPS, HttpClient
from spiff_connector_http.decoding import MAX_PIECE, DecodingError, decoder_for
from spiff_connector_http.response import decode_headers
from spiff_connector_http.sending import wire_url

BODY = b'{"a": "\xc3\xbc"}' * 10


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def _decoded(encoding: str, data: bytes) -> bytes:
    decoder = decoder_for({"content-encoding": encoding})
    assert decoder is not None
    return b"".join(decoder.decode(data)) + decoder.flush()


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("gzip", gzip.compress(BODY)),
        ("GZIP", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", _raw_deflate(BODY)),
        ("deflate, gzip", gzip.compress(zlib.compress(BODY))),
        ("identity, gzip", gzip.compress(BODY)),
    ],
)
def test_bodies_decode_per_their_content_encoding(encoding: str, data: bytes) -> None:
    assert _decoded(encoding, data) == BODY


@pytest.mark.parametrize("encoding", [None, "", "identity", "br", "zstd"])
def test_other_encodings_are_passed_through(encoding: str | None) -> None:
    assert decoder_for({} if encoding is None else {"content-encoding": encoding}) is None


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_body_that_does_not_decode_is_a_decoding_error(encoding: str) -> None:
    with pytest.raises(DecodingError):
        _decoded(encoding, b"\xff\xfenot compressed at all")


def test_a_small_chunk_that_expands_hugely_decodes_in_bounded_pieces() -> None:
    decoder = decoder_for({"content-encoding": "gzip"})
    assert decoder is not None
    pieces = list(decoder.decode(gzip.compress(b"0" * (5 * MAX_PIECE))))
    assert max(len(piece) for piece in pieces) <= MAX_PIECE
    assert sum(len(piece) for piece in pieces) + len(decoder.flush()) == 5 * MAX_PIECE


def test_response_headers_are_read_as_utf8_else_as_latin1() -> None:
    assert decode_headers([(b"X-A", b"caf\xc3\xa9"), (b"x-a", b"2")]) == {"x-a": "café, 2"}
    assert decode_headers([(b"X-A", b"caf\xe9"), (b"X-B", b"caf\xc3\xa9")]) == {"x-a": "café", "x-b": "cafÃ©"}


def test_the_url_is_sent_as_parsed_without_userinfo_and_fragment() -> None:
    url = httpx.URL("http://user:pw@Example.COM:8080/p%2Fq/%7E?x=%2F&y=a+b#frag")
    sent = wire_url(url)
    assert sent.raw_path_qs == "/p%2Fq/%7E?x=%2F&y=a+b"
    assert (sent.host, sent.port, sent.user, sent.fragment) == ("example.com", 8080, None, "")


async def test_proxy_lookups_are_kept_per_origin_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each origin's environment proxy is looked up once; a diagram calling ever new hosts does not
    grow the client without bound."""
    monkeypatch.setenv("HTTP_PROXY", "http://egress.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    client = HttpClient()
    try:
        assert str(client.proxy(httpx.URL("http://api.example/a"))) == "http://egress.example:3128"
        assert client.proxy(httpx.URL("http://internal.example/b")) is None
        monkeypatch.delenv("HTTP_PROXY")
        assert str(client.proxy(httpx.URL("http://api.example/c"))) == "http://egress.example:3128"  # kept
        for number in range(MAX_PROXY_LOOKUPS + 10):
            client.proxy(httpx.URL(f"http://host-{number}.example/"))
        assert len(client._proxies) <= MAX_PROXY_LOOKUPS
    finally:
        await client.aclose()
