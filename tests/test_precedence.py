"""Command-id conflicts: the oldest Connector wins, deterministically, for operator and proxy alike."""

from __future__ import annotations

from connector_proxy.precedence import Claim, lost_commands, winners

OLD = Claim("ns", "zeta", "2026-01-01T00:00:00Z", frozenset({"a/A", "a/B"}))
NEW = Claim("ns", "alpha", "2026-01-02T00:00:00Z", frozenset({"a/B", "a/C"}))
SAME_TIME = Claim("ns", "beta", "2026-01-02T00:00:00Z", frozenset({"a/C"}))


def test_oldest_wins_regardless_of_name() -> None:
    assert lost_commands(NEW, [OLD, NEW]) == {"a/B": "ns/zeta"}
    assert lost_commands(OLD, [OLD, NEW]) == {}


def test_same_creation_time_falls_back_to_namespace_then_name() -> None:
    assert lost_commands(SAME_TIME, [NEW, SAME_TIME]) == {"a/C": "ns/alpha"}
    assert lost_commands(NEW, [NEW, SAME_TIME]) == {}


def test_winners_match_lost_commands_for_every_claim() -> None:
    claims = [SAME_TIME, NEW, OLD]
    chosen = winners(claims)
    assert {k: v.key for k, v in chosen.items()} == {"a/A": "ns/zeta", "a/B": "ns/zeta", "a/C": "ns/alpha"}
    for claim in claims:
        for command_id, winner in lost_commands(claim, claims).items():
            assert chosen[command_id].key == winner
