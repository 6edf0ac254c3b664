"""Scrubbing a request's values out of exception text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connector_proxy.scrubbing import MASK, MAX_VALUES, MIN_LENGTH, Scrubber


def test_every_value_of_nested_parameters_and_config_is_masked() -> None:
    scrub = Scrubber([{"password": "hunter22", "nested": {"list": ["tok-abc", 123456]}}, {"KEY": "cfg-secret"}])
    text = "login hunter22 failed; token tok-abc, pin 123456, key cfg-secret"
    assert scrub(text) == f"login {MASK} failed; token {MASK}, pin {MASK}, key {MASK}"


def test_repr_and_json_spellings_are_masked_too() -> None:
    value = 'it\'s "quoted"\n'
    scrub = Scrubber([{"p": value}])
    for spelling in (repr(value), f"{value!r}"[1:-1], '"it\'s \\"quoted\\"\\n"'):
        assert "quoted" not in scrub(f"got {spelling} back")


def test_the_longest_value_wins_so_nothing_of_it_is_left() -> None:
    scrub = Scrubber([{"a": "secret", "b": "secret-and-more"}])
    assert scrub("x secret-and-more y secret") == f"x {MASK} y {MASK}"


def test_short_values_booleans_and_none_leave_the_text_alone() -> None:
    scrub = Scrubber([{"a": "ab", "b": True, "c": None, "d": 7}])
    assert scrub("ab True None 7") == "ab True None 7"
    assert MIN_LENGTH == 3


def test_no_values_no_change() -> None:
    assert Scrubber([])("Unsupported operator 'LIKE'") == "Unsupported operator 'LIKE'"


@given(secret=st.text(min_size=MIN_LENGTH).filter(lambda s: "*" not in s), before=st.text(), after=st.text())
def test_a_value_never_survives_in_the_text(secret: str, before: str, after: str) -> None:
    assert secret not in Scrubber([{"secret": secret}])(before + secret + after)


def test_the_bound_on_collected_values_holds_over_all_sources() -> None:
    many = {f"k{i}": f"value-{i:06d}" for i in range(MAX_VALUES)}
    scrub = Scrubber([many, {"later": "beyond-the-bound"}])
    assert scrub("value-000001 beyond-the-bound") == f"{MASK} beyond-the-bound"
