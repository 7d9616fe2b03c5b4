"""Bad input to the Toxiproxy API (issue 14, items 4 and 9): lone surrogates, deep nesting, non-finite and
out-of-range numbers get a 400 in Toxiproxy's error shape, and a request that fails changes nothing."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator

import httpx
import pytest
from test_toxiproxy_api import UPSTREAM, assert_error
from tp_helpers import connect, round_trip_ms, upstream

from harness.network.toxiproxy.wire import encode_json

DEEP = 100_000


def strict_json(text: str) -> object:
    """json.loads that refuses what strict parsers refuse: NaN, Infinity, and lone UTF-16 surrogates (raw, or as
    a `\\ud800` escape; an escaped pair such as `\\ud83d\\ude00` is fine)."""

    def refuse(constant: str) -> object:
        raise AssertionError(f"the server sent {constant}, which is not JSON")

    value = json.loads(text, parse_constant=refuse)
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # raises on a lone surrogate anywhere in the value
    return value


def snapshot(api: httpx.Client) -> object:
    resp = api.get("/proxies")
    assert resp.status_code == 200, resp.text
    return strict_json(resp.text)


@pytest.fixture
def proxy_name(make_proxy: Callable[..., dict[str, object]]) -> str:
    return str(make_proxy(UPSTREAM)["name"])


@pytest.fixture
def toxic_url(api: httpx.Client, proxy_name: str) -> str:
    resp = api.post(f"/proxies/{proxy_name}/toxics", json={"type": "latency", "attributes": {"latency": 1}})
    assert resp.status_code == 200, resp.text
    return f"/proxies/{proxy_name}/toxics/latency_downstream"


@pytest.fixture
def busy_port() -> Iterator[str]:
    """An address something else already listens on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield f"127.0.0.1:{sock.getsockname()[1]}"


# -- item 4: lone surrogates ------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["name", "upstream", "listen"])
def test_a_lone_surrogate_in_a_new_proxy_is_400_and_stores_nothing(api: httpx.Client, field: str) -> None:
    before = snapshot(api)
    body = {"name": "surrogate_proxy", "upstream": UPSTREAM, "listen": "127.0.0.1:0"}
    raw = json.dumps(body).replace(f'"{body[field]}"', f'"{body[field]}\\ud800"').encode()
    assert_error(api.post("/proxies", content=raw), 400, "bad request body")
    assert snapshot(api) == before


def test_a_lone_surrogate_in_a_key_or_a_toxic_is_400(api: httpx.Client, proxy_name: str, toxic_url: str) -> None:
    before = snapshot(api)
    toxics = f"/proxies/{proxy_name}/toxics"
    assert_error(api.post(toxics, content=b'{"type":"latency","name":"t\\udc00"}'), 400, "bad request body")
    assert_error(api.post(toxics, content=b'{"type":"latency","\\ud800":1}'), 400, "bad request body")
    assert_error(api.patch(toxic_url, content=b'{"attributes":{"latency\\ud800":1}}'), 400, "bad request body")
    assert_error(api.patch(f"/proxies/{proxy_name}", content=b'{"upstream":"\\udfff:1"}'), 400, "bad request body")
    assert snapshot(api) == before


# -- item 4: deep nesting and other undecodable bodies ----------------------------------------------------------
DEEP_BODIES = {
    "array": b"[" * DEEP + b"]" * DEEP,
    "object": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "attributes": b'{"type":"latency","attributes":{"latency":' + b"[" * DEEP + b"]" * DEEP + b"}}",
}


@pytest.mark.parametrize("shape", DEEP_BODIES)
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/proxies"), ("POST", "/populate"), ("PATCH", "{proxy}"), ("POST", "{toxics}"), ("PATCH", "{toxic}")],
)
def test_deeply_nested_bodies_are_400(
    api: httpx.Client, proxy_name: str, toxic_url: str, shape: str, method: str, path: str
) -> None:
    before = snapshot(api)
    url = path.format(proxy=f"/proxies/{proxy_name}", toxics=f"/proxies/{proxy_name}/toxics", toxic=toxic_url)
    resp = api.request(method, url, content=DEEP_BODIES[shape])
    assert resp.status_code == 400, resp.text[:300]
    assert strict_json(resp.text)["status"] == 400  # type: ignore[index]
    assert snapshot(api) == before


def test_an_integer_literal_too_long_to_convert_is_400(api: httpx.Client, proxy_name: str) -> None:
    body = b'{"type":"latency","attributes":{"latency":1' + b"0" * 5000 + b"}}"
    assert_error(api.post(f"/proxies/{proxy_name}/toxics", content=body), 400, "bad request body")


# -- item 9: non-finite and out-of-range numbers ----------------------------------------------------------------
NOT_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]
HUGE = pytest.param("1" + "0" * 400, id="10**400")


@pytest.mark.parametrize("literal", [*NOT_FINITE, HUGE])
def test_a_non_finite_toxicity_is_400(api: httpx.Client, proxy_name: str, toxic_url: str, literal: str) -> None:
    before = snapshot(api)
    create = f'{{"type":"latency","name":"nan","toxicity":{literal}}}'.encode()
    assert_error(api.post(f"/proxies/{proxy_name}/toxics", content=create), 400, "bad request body")
    assert_error(api.patch(toxic_url, content=f'{{"toxicity":{literal}}}'.encode()), 400, "bad request body")
    assert snapshot(api) == before


@pytest.mark.parametrize("literal", [*NOT_FINITE, str(2**63), str(-(2**63) - 1), HUGE])
def test_an_attribute_outside_int64_or_not_finite_is_400(
    api: httpx.Client, proxy_name: str, toxic_url: str, literal: str
) -> None:
    before = snapshot(api)
    create = f'{{"type":"latency","name":"big","attributes":{{"latency":{literal}}}}}'.encode()
    assert_error(api.post(f"/proxies/{proxy_name}/toxics", content=create), 400, "bad request body")
    update = f'{{"attributes":{{"jitter":{literal}}}}}'.encode()
    assert_error(api.patch(toxic_url, content=update), 400, "bad request body")
    assert snapshot(api) == before


def test_int64_bounds_are_accepted(api: httpx.Client, proxy_name: str) -> None:
    """The largest values Toxiproxy's int64 attributes hold still work and serialise as JSON."""
    body = {"type": "slicer", "attributes": {"average_size": 2**63 - 1, "size_variation": 0, "delay": 2**63 - 1}}
    resp = api.post(f"/proxies/{proxy_name}/toxics", json=body)
    assert resp.status_code == 200, resp.text
    assert strict_json(resp.text)["attributes"]["average_size"] == 2**63 - 1  # type: ignore[index]
    snapshot(api)


def test_the_encoder_refuses_what_is_not_json() -> None:
    """Defence in depth: the API's one JSON writer raises rather than write NaN or a lone surrogate."""
    with pytest.raises(ValueError):
        encode_json({"toxicity": float("nan")})
    with pytest.raises(ValueError):
        encode_json({"name": "a\ud800"})


# -- item 4: a failed request changes nothing --------------------------------------------------------------------
def test_a_failed_proxy_update_keeps_the_proxy_as_it_was(
    api: httpx.Client, embedded: bool, proxy_name: str, busy_port: str
) -> None:
    if not embedded:
        pytest.skip("real Toxiproxy leaves a proxy stopped on its new address when the listen fails")
    with upstream() as server:
        api.patch(f"/proxies/{proxy_name}", json={"upstream": server.address})
        before = api.get(f"/proxies/{proxy_name}").json()
        resp = api.patch(f"/proxies/{proxy_name}", json={"listen": busy_port, "upstream": UPSTREAM})
        assert_error(resp, 500, "listen tcp")
        assert_error(api.patch(f"/proxies/{proxy_name}", json={"listen": "no-port"}), 400, "bad request body")
        assert api.get(f"/proxies/{proxy_name}").json() == before
        with connect(str(before["listen"])) as sock:
            round_trip_ms(sock)  # still listening, still on the old upstream


def test_populate_with_one_bad_entry_changes_nothing(api: httpx.Client, proxy_name: str) -> None:
    before = snapshot(api)
    good = {"name": "populate_good", "upstream": UPSTREAM, "listen": "127.0.0.1:0"}
    cases = [
        ([good, {"name": "populate_bad", "upstream": UPSTREAM, "listen": "no-port"}], "bad request body"),
        ([good, {"name": "populate_bad", "upstream": UPSTREAM, "enabled": "yes"}], "bad request body"),
        ([good, {"name": "populate_bad"}], "missing required field: upstream at proxy 2"),
        ([good, {"name": proxy_name, "upstream": "127.0.0.1:2"}, {"name": proxy_name, "upstream": UPSTREAM}], "bad"),
    ]
    for entries, message in cases:
        resp = api.post("/populate", json=entries)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"].startswith(message) and resp.json()["proxies"] is None, resp.text
        assert snapshot(api) == before
    raw = b'[{"name":"populate_good","upstream":"127.0.0.1:1"},{"name":"x\\ud800","upstream":"127.0.0.1:1"}]'
    assert api.post("/populate", content=raw).status_code == 400
    assert snapshot(api) == before


def test_populate_that_fails_to_listen_rolls_back(
    api: httpx.Client, embedded: bool, proxy_name: str, busy_port: str
) -> None:
    if not embedded:
        pytest.skip("real Toxiproxy keeps the entries it applied before the failing one")
    api.post(f"/proxies/{proxy_name}/toxics", json={"type": "latency"})
    before = snapshot(api)
    entries = [
        {"name": "populate_new", "upstream": UPSTREAM, "listen": "127.0.0.1:0"},
        {"name": proxy_name, "upstream": "127.0.0.1:2", "listen": "127.0.0.1:0"},  # replaces the existing proxy
        {"name": "populate_busy", "upstream": UPSTREAM, "listen": busy_port},
    ]
    resp = api.post("/populate", json=entries)
    assert resp.status_code == 500 and resp.json()["error"].startswith("listen tcp")
    assert resp.json()["proxies"] is None
    assert snapshot(api) == before
    with connect(str(before[proxy_name]["listen"])):  # type: ignore[index]
        pass  # the restored proxy listens again
