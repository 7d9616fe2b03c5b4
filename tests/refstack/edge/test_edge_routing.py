"""The routing table, row by row: country × origin health → region and reason."""

from __future__ import annotations

import pytest

from harness.refstack.edge.routing import (
    JAPAN,
    SINGAPORE,
    RoutingPolicy,
    choose_origin,
    normalize_country,
    switched_policy,
)

BOTH_UP = {SINGAPORE: True, JAPAN: True}
SG_DOWN = {SINGAPORE: False, JAPAN: True}
JP_DOWN = {SINGAPORE: True, JAPAN: False}
BOTH_DOWN = {SINGAPORE: False, JAPAN: False}
DEFAULT = RoutingPolicy()
HK_MO_TO_JAPAN = RoutingPolicy(hk_mo_to_secondary=True)

TABLE = [
    # country, health, policy, region, reason
    ("CN", BOTH_UP, DEFAULT, JAPAN, "preferred"),
    ("SG", BOTH_UP, DEFAULT, SINGAPORE, "preferred"),
    ("US", BOTH_UP, DEFAULT, SINGAPORE, "preferred"),
    ("JP", BOTH_UP, DEFAULT, SINGAPORE, "preferred"),
    (None, BOTH_UP, DEFAULT, SINGAPORE, "preferred"),
    ("HK", BOTH_UP, DEFAULT, SINGAPORE, "preferred"),
    ("MO", BOTH_UP, DEFAULT, SINGAPORE, "preferred"),
    ("TW", BOTH_UP, HK_MO_TO_JAPAN, SINGAPORE, "preferred"),
    ("HK", BOTH_UP, HK_MO_TO_JAPAN, JAPAN, "preferred"),
    ("MO", BOTH_UP, HK_MO_TO_JAPAN, JAPAN, "preferred"),
    ("CN", BOTH_UP, HK_MO_TO_JAPAN, JAPAN, "preferred"),
    # Singapore down: everyone to Japan.
    ("SG", SG_DOWN, DEFAULT, JAPAN, "failover"),
    (None, SG_DOWN, DEFAULT, JAPAN, "failover"),
    ("CN", SG_DOWN, DEFAULT, JAPAN, "preferred"),
    # Japan down: mainland China falls back to Singapore; the rest do not notice.
    ("CN", JP_DOWN, DEFAULT, SINGAPORE, "failover"),
    ("SG", JP_DOWN, DEFAULT, SINGAPORE, "preferred"),
    ("HK", JP_DOWN, HK_MO_TO_JAPAN, SINGAPORE, "failover"),
    # Nothing healthy: keep the preferred origin and say so.
    ("CN", BOTH_DOWN, DEFAULT, JAPAN, "no-healthy-origin"),
    ("SG", BOTH_DOWN, DEFAULT, SINGAPORE, "no-healthy-origin"),
    # No health data (Lambda@Edge): route on country alone.
    ("CN", {}, DEFAULT, JAPAN, "preferred"),
    ("DE", {}, DEFAULT, SINGAPORE, "preferred"),
]


@pytest.mark.parametrize(("country", "health", "policy", "region", "reason"), TABLE)
def test_routing_table(
    country: str | None, health: dict[str, bool], policy: RoutingPolicy, region: str, reason: str
) -> None:
    decision = choose_origin(country, "/rest/v1/messages", health, policy)
    assert (decision.region, decision.reason) == (region, reason)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("CN", "CN"),
        ("cn", "CN"),
        (" Cn ", "CN"),
        ("", None),
        (None, None),
        ("China", None),
        ("C1", None),
        ("中国", None),
    ],
)
def test_country_header_is_normalized_and_garbage_means_unknown(raw: str | None, normalized: str | None) -> None:
    assert normalize_country(raw) == normalized


def test_lower_case_cn_still_goes_to_japan() -> None:
    assert choose_origin("cn", "/", BOTH_UP, DEFAULT).region == JAPAN


def test_decision_remembers_where_the_viewer_would_have_gone() -> None:
    decision = choose_origin("SG", "/", SG_DOWN, DEFAULT)
    assert decision.as_dict() == {"region": JAPAN, "reason": "failover", "preferred": SINGAPORE, "country": "SG"}


def test_pinned_prefix_overrides_country_but_not_health() -> None:
    policy = RoutingPolicy(pinned_prefixes={"/functions/v1/canary": JAPAN})
    assert choose_origin("SG", "/functions/v1/canary", BOTH_UP, policy).region == JAPAN
    assert choose_origin("SG", "/functions/v1/canary/x", BOTH_UP, policy).region == JAPAN
    assert choose_origin("SG", "/functions/v1/canaryx", BOTH_UP, policy).region == SINGAPORE
    assert choose_origin("SG", "/functions/v1/canary", JP_DOWN, policy).region == SINGAPORE


def test_extra_secondary_countries_are_a_policy_field() -> None:
    policy = RoutingPolicy(secondary_countries=frozenset({"CN", "KR"}))
    assert choose_origin("KR", "/", BOTH_UP, policy).region == JAPAN


def test_switching_to_the_home_primary_gives_the_home_policy_back_unchanged() -> None:
    home = RoutingPolicy(hk_mo_to_secondary=True, pinned_prefixes={"/rest/v1/canary": JAPAN})
    assert switched_policy(home, SINGAPORE) is home


@pytest.mark.parametrize("country", ["CN", "HK", "SG", "US", None])
def test_switching_to_japan_sends_every_viewer_there_and_fails_over_to_singapore(country: str | None) -> None:
    home = RoutingPolicy(hk_mo_to_secondary=True, pinned_prefixes={"/rest/v1/canary": SINGAPORE})
    switched = switched_policy(home, JAPAN)
    assert switched.regions == (JAPAN, SINGAPORE)
    for path in ("/rest/v1/messages", "/rest/v1/canary/x"):
        assert choose_origin(country, path, BOTH_UP, switched).as_dict()["region"] == JAPAN
        assert choose_origin(country, path, JP_DOWN, switched).reason == "failover"
        assert choose_origin(country, path, JP_DOWN, switched).region == SINGAPORE


def test_switching_to_a_region_the_policy_does_not_route_to_is_refused() -> None:
    with pytest.raises(ValueError, match="valid: ap-southeast-1, ap-northeast-1"):
        switched_policy(DEFAULT, "us-east-1")
