"""The Lambda@Edge origin-request handler on CloudFront-shaped sample events (tests/refstack/edge/events/)."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.refstack.edge import lambda_edge, routing
from harness.refstack.edge.lambda_edge import LambdaConfig, load_config, make_handler

EVENTS = Path(__file__).with_name("events")
SG = "qwertyuiopasdfghjklz.supabase.co"
JP = "mnbvcxzlkjhgfdsapoiu.supabase.co"


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


@pytest.fixture
def config() -> LambdaConfig:
    return load_config(EVENTS / "edge_config.json")


@pytest.mark.parametrize(
    ("event_name", "domain"),
    [
        ("origin-request-cn-rest-get.json", JP),
        ("origin-request-sg-auth-post.json", SG),
        ("origin-request-no-country.json", SG),
        ("origin-request-hk-realtime-websocket.json", SG),
        # Origin-group failover: CloudFront calls the handler again with the secondary origin in the event.
        ("origin-request-cn-failover-to-secondary.json", SG),
        ("origin-request-us-failover-to-secondary.json", JP),
    ],
)
def test_handler_rewrites_origin_and_host(config: LambdaConfig, event_name: str, domain: str) -> None:
    event = load_event(event_name)
    before = copy.deepcopy(event["Records"][0]["cf"]["request"])
    out = make_handler(config)(event, None)
    assert out["origin"]["custom"]["domainName"] == domain
    assert out["headers"]["host"] == [{"key": "Host", "value": domain}]
    # Everything else reaches the origin as CloudFront sent it.
    for key in ("uri", "querystring", "method", "clientIp", "body"):
        assert out.get(key) == before.get(key)
    assert {k: v for k, v in out["headers"].items() if k != "host"} == {
        k: v for k, v in before["headers"].items() if k != "host"
    }


def test_s3_origin_for_the_web_shell_passes_through(config: LambdaConfig) -> None:
    event = load_event("origin-request-s3-webshell.json")
    before = copy.deepcopy(event["Records"][0]["cf"]["request"])
    assert make_handler(config)(event, None) == before


def test_unknown_custom_origin_passes_through(config: LambdaConfig) -> None:
    event = load_event("origin-request-cn-rest-get.json")
    event["Records"][0]["cf"]["request"]["origin"]["custom"]["domainName"] = "livekit.example.com"
    out = make_handler(config)(event, None)
    assert out["origin"]["custom"]["domainName"] == "livekit.example.com"


def test_hk_goes_to_japan_when_the_policy_says_so(config: LambdaConfig) -> None:
    hk_policy = LambdaConfig(origins=config.origins, policy=routing.RoutingPolicy(hk_mo_to_secondary=True))
    out = make_handler(hk_policy)(load_event("origin-request-hk-realtime-websocket.json"), None)
    assert out["origin"]["custom"]["domainName"] == JP


def test_static_health_moves_everyone_to_japan(config: LambdaConfig) -> None:
    drained = LambdaConfig(origins=config.origins, policy=config.policy, health={"ap-southeast-1": False})
    out = make_handler(drained)(load_event("origin-request-sg-auth-post.json"), None)
    assert out["origin"]["custom"]["domainName"] == JP


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "origins: None is not a map of region to domain name"),
        ({"origins": {"ap-southeast-1": SG}}, "no domain for region 'ap-northeast-1'"),
        (
            {"origins": {"ap-southeast-1": SG, "ap-northeast-1": JP}, "policy": {"hk": True}},
            "policy: unknown field(s) ['hk']",
        ),
        (
            {"origins": {"ap-southeast-1": SG, "ap-northeast-1": JP}, "health": {"ap-southeast-1": "down"}},
            "health: {'ap-southeast-1': 'down'} is not a map of region to true/false",
        ),
    ],
)
def test_bad_config_names_the_field(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        LambdaConfig.from_dict(raw)
    assert message in str(info.value)
    assert str(info.value).startswith("edge_config.json: ")


def test_missing_config_file_says_what_to_ship(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ship edge_config\.json next to lambda_edge\.py"):
        load_config(tmp_path / "edge_config.json")


def test_deploys_flat_without_the_harness_package(tmp_path: Path) -> None:
    """The zip layout: lambda_edge.py, routing.py and edge_config.json side by side, harness not importable."""
    for module in (lambda_edge, routing):
        assert module.__file__ is not None
        shutil.copy(module.__file__, tmp_path)
    shutil.copy(EVENTS / "edge_config.json", tmp_path)
    script = (
        "import json, sys\n"
        "sys.path.insert(0, '.')\n"
        "sys.modules['harness'] = None  # as in Lambda: the harness package is not there\n"
        "import lambda_edge\n"
        f"event = json.load(open({str(EVENTS / 'origin-request-cn-rest-get.json')!r}))\n"
        "print(lambda_edge.handler(event, None)['origin']['custom']['domainName'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == JP
