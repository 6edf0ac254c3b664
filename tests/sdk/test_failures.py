"""A failure's cause chain: outermost first, each exception once, bounded."""

from __future__ import annotations

import itertools
import ssl

from spiff_connector_sdk.failures import exception_chain


def _wrapped() -> BaseException:
    try:
        try:
            raise ssl.SSLError("certificate verify failed")
        except ssl.SSLError as tls:
            raise ConnectionError("handshake") from tls
    except ConnectionError as connect:
        try:
            raise RuntimeError("request failed")  # raised during the handling of connect
        except RuntimeError as outer:
            assert outer.__context__ is connect
            return outer


def test_the_chain_follows_causes_and_contexts_outermost_first() -> None:
    chain = exception_chain(_wrapped())
    assert [type(item) for item in chain] == [RuntimeError, ConnectionError, ssl.SSLError]


def test_a_chain_that_loops_back_ends_there_and_a_long_one_is_bounded() -> None:
    first, second = ValueError("a"), KeyError("b")
    first.__cause__, second.__cause__ = second, first
    assert exception_chain(first) == [first, second]
    links = [ValueError(str(number)) for number in range(40)]
    for outer, inner in itertools.pairwise(links):
        outer.__cause__ = inner
    assert len(exception_chain(links[0])) == 16
    assert len(exception_chain(links[0], limit=3)) == 3
