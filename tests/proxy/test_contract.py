"""The Connector contract: readiness, claims and conflicts read the same by the operator and the proxy."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connector_proxy.contract import Claim, claim_of, lost_commands, serves, winners
from connector_proxy.kubernetes.forwarding import Forwarder, RemoteCommand
from connector_proxy.kubernetes.registry import RemoteRegistryBuilder

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


def _connector(
    name: str, created: str, ids: list[object], *, ready: bool = True, endpoint: str | None = "http://w:7004"
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name, "creationTimestamp": created},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "endpoint": endpoint,
            "commands": [{"id": i, "parameters": []} for i in ids],
        },
    }


def test_a_ready_connector_without_endpoint_claims_nothing() -> None:
    """It serves nothing (no proxy can route to it), so it must not win any id either."""
    assert claim_of(_connector("c", "2026-01-01T00:00:00Z", ["a/A"], endpoint=None)) is None
    assert not serves(_connector("c", "2026-01-01T00:00:00Z", ["a/A"], endpoint=None))


def test_a_connector_whose_workload_is_down_keeps_its_commands() -> None:
    """Ready=False for a dead pod or an unreachable endpoint: its commands stay (and answer 503, which
    spiff-arena retries) rather than vanish (a 404 fails the task for good)."""
    down = _connector("c", "2026-01-01T00:00:00Z", ["a/A"], ready=False)
    assert serves(down)
    claim = claim_of(down)
    assert claim is not None and claim.command_ids == frozenset({"a/A"})
    withdrawn = _connector("c", "2026-01-01T00:00:00Z", [], ready=False)  # suspended, invalid, moved
    assert not serves(withdrawn) and claim_of(withdrawn) is None


def test_malformed_command_ids_are_never_claimed() -> None:
    claim = claim_of(_connector("c", "2026-01-01T00:00:00Z", [None, 7, "noslash", "a/A"]))
    assert claim is not None
    assert claim.command_ids == frozenset({"a/A"})


_ids = st.lists(st.sampled_from(["a/A", "a/B", "b/C", None, "bad"]), max_size=4)
_objects = st.lists(
    st.builds(
        _connector,
        name=st.sampled_from(["p", "q", "r", "s"]),
        created=st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]),
        ids=_ids,
        ready=st.booleans(),
        endpoint=st.sampled_from(["http://w:7004", None, ""]),
    ),
    max_size=5,
    unique_by=lambda o: o["metadata"]["name"],
)


@given(_objects)
@settings(max_examples=200, deadline=None)
def test_operator_conflicts_and_proxy_routing_agree(objects: list[dict[str, Any]]) -> None:
    """What the operator reports as lost (its conflict condition) is exactly what the proxy does not
    route to that Connector, for any set of Connectors."""
    registry = RemoteRegistryBuilder(Forwarder()).build(objects, revision=1)
    routed = {cid: cmd.remote.key for cid, cmd in registry.commands.items() if isinstance(cmd, RemoteCommand)}
    claims = [c for o in objects if (c := claim_of(o)) is not None]  # what the operator's index holds
    for claim in claims:
        lost = lost_commands(claim, claims)
        for command_id in claim.command_ids:
            if command_id in lost:
                assert routed[command_id] == lost[command_id]
            else:
                assert routed[command_id] == claim.key
    assert set(routed) == {cid for c in claims for cid in c.command_ids}


def test_a_rebuild_reuses_the_commands_of_every_connector_that_did_not_change() -> None:
    builder = RemoteRegistryBuilder(Forwarder())
    old = _connector("old", "2026-01-01T00:00:00Z", ["a/A", "a/B"])
    new = _connector("new", "2026-01-02T00:00:00Z", ["a/B", "b/C"])
    first = builder.build([old, new], revision=1)
    again = builder.build([old, new], revision=2)
    assert all(again.commands[i] is first.commands[i] for i in first.commands)
    assert again.commands_catalog.body == first.commands_catalog.body
    # "old" leaves: "new" now wins a/B, so its commands are made again; a changed catalog too.
    third = builder.build([new], revision=3)
    assert set(third.commands) == {"a/B", "b/C"} and third.commands["b/C"] is not first.commands["b/C"]
    changed = _connector("new", "2026-01-02T00:00:00Z", ["a/B", "b/D"])
    fourth = builder.build([changed], revision=4)
    assert set(fourth.commands) == {"a/B", "b/D"}
    assert (
        fourth.commands_catalog.body
        == RemoteRegistryBuilder(Forwarder()).build([changed], revision=1).commands_catalog.body
    )
