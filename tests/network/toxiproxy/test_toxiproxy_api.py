"""Contract tests of the Toxiproxy 2.x HTTP API over raw HTTP (docs/protocols.md §8.1). They run against the server
`TOXIPROXY_URL` names, else the embedded one."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import httpx
import pytest
from tp_helpers import connect, round_trip_ms, upstream

UPSTREAM = "127.0.0.1:1"  # proxies that are never dialled in a test need no real upstream


def assert_error(resp: httpx.Response, status: int, message_prefix: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    assert resp.text.endswith("}\n")
    body = json.loads(resp.text)
    assert body["status"] == status
    assert body["error"].startswith(message_prefix), body


def test_create_proxy_answers_201_with_the_bound_port(api: httpx.Client, make_proxy: Callable) -> None:
    created = make_proxy(UPSTREAM)
    assert set(created) >= {"name", "listen", "upstream", "enabled", "toxics"}
    assert created["upstream"] == UPSTREAM and created["enabled"] is True and created["toxics"] == []
    host, port = str(created["listen"]).rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0


def test_every_response_carries_a_request_id(api: httpx.Client) -> None:
    ids = {
        api.get("/proxies").headers["x-toxiproxy-request-id"],
        api.get("/nope").headers.get("x-toxiproxy-request-id"),
    }
    assert None not in ids and len(ids) == 2


def test_proxy_index_is_a_dict_keyed_by_name(api: httpx.Client, make_proxy: Callable) -> None:
    created = make_proxy(UPSTREAM)
    resp = api.get("/proxies")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    assert resp.json()[created["name"]] == created


def test_duplicate_proxy_is_409(api: httpx.Client, make_proxy: Callable) -> None:
    created = make_proxy(UPSTREAM)
    resp = api.post("/proxies", json={"name": created["name"], "upstream": UPSTREAM, "listen": "127.0.0.1:0"})
    assert_error(resp, 409, "proxy already exists")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"upstream": UPSTREAM}, "missing required field: name"),
        ({"name": "no_upstream"}, "missing required field: upstream"),
        ("{not json", "bad request body"),
        ({"name": 5, "upstream": UPSTREAM}, "bad request body"),
    ],
)
def test_bad_proxy_create_is_400(api: httpx.Client, body: object, message: str) -> None:
    content = body if isinstance(body, str) else json.dumps(body)
    assert_error(api.post("/proxies", content=content), 400, message)


def test_listen_on_a_busy_port_is_500(api: httpx.Client, make_proxy: Callable) -> None:
    created = make_proxy(UPSTREAM)
    resp = api.post("/proxies", json={"name": "busy_port", "upstream": UPSTREAM, "listen": created["listen"]})
    assert_error(resp, 500, "listen tcp")
    assert api.get("/proxies/busy_port").status_code == 404


def test_show_and_missing_proxy(api: httpx.Client, make_proxy: Callable) -> None:
    created = make_proxy(UPSTREAM)
    assert api.get(f"/proxies/{created['name']}").json() == created
    assert_error(api.get("/proxies/does_not_exist"), 404, "proxy not found")


@pytest.mark.parametrize("method", ["PATCH", "POST"])
def test_update_keeps_missing_fields_and_reuses_the_port(api: httpx.Client, make_proxy: Callable, method: str) -> None:
    created = make_proxy(UPSTREAM)
    url = f"/proxies/{created['name']}"
    resp = api.request(method, url, json={"enabled": False})
    assert resp.status_code == 200 and resp.json()["enabled"] is False
    assert resp.json()["listen"] == created["listen"] and resp.json()["upstream"] == UPSTREAM
    resp = api.request(method, url, json={"enabled": True})
    assert resp.json()["enabled"] is True and resp.json()["listen"] == created["listen"]
    resp = api.request(method, url, json={"upstream": "127.0.0.1:2"})
    assert resp.status_code == 200 and resp.json()["upstream"] == "127.0.0.1:2" and resp.json()["enabled"] is True


def test_delete_proxy_is_204(api: httpx.Client, make_proxy: Callable) -> None:
    created = make_proxy(UPSTREAM)
    resp = api.delete(f"/proxies/{created['name']}")
    assert resp.status_code == 204 and resp.content == b""
    assert_error(api.get(f"/proxies/{created['name']}"), 404, "proxy not found")
    assert_error(api.delete(f"/proxies/{created['name']}"), 404, "proxy not found")


def test_toxic_create_is_200_with_defaults(api: httpx.Client, make_proxy: Callable) -> None:
    name = make_proxy(UPSTREAM)["name"]
    resp = api.post(f"/proxies/{name}/toxics", json={"type": "latency", "attributes": {"latency": 10}})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "attributes": {"latency": 10, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1,
    }
    assert api.get(f"/proxies/{name}").json()["toxics"] == [resp.json()]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"type": "latency", "stream": "sideways"}, 400, "stream was invalid, can be either upstream or downstream"),
        ({"type": "no_such_toxic"}, 400, "invalid toxic type"),
        ({"type": "bandwidth", "attributes": {"rate": -1}}, 400, "bad request body"),
        ({"type": "latency", "attributes": {"latency": "100ms"}}, 400, "bad request body"),
        ({"type": "slicer", "attributes": {"average_size": 0}}, 400, "bad request body"),
    ],
)
def test_bad_toxic_create(api: httpx.Client, make_proxy: Callable, body: dict, status: int, message: str) -> None:
    name = make_proxy(UPSTREAM)["name"]
    assert_error(api.post(f"/proxies/{name}/toxics", json=body), status, message)
    assert api.get(f"/proxies/{name}/toxics").json() == []


def test_duplicate_toxic_is_409_and_missing_proxy_404(api: httpx.Client, make_proxy: Callable) -> None:
    name = make_proxy(UPSTREAM)["name"]
    body = {"type": "timeout", "name": "t", "stream": "upstream"}
    assert api.post(f"/proxies/{name}/toxics", json=body).status_code == 200
    assert_error(
        api.post(f"/proxies/{name}/toxics", json={**body, "stream": "downstream"}), 409, "toxic already exists"
    )
    assert_error(api.post("/proxies/does_not_exist/toxics", json=body), 404, "proxy not found")


def test_toxic_index_lists_upstream_first(api: httpx.Client, make_proxy: Callable) -> None:
    name = make_proxy(UPSTREAM)["name"]
    api.post(f"/proxies/{name}/toxics", json={"type": "latency", "stream": "downstream"})
    api.post(f"/proxies/{name}/toxics", json={"type": "latency", "stream": "upstream"})
    names = [t["name"] for t in api.get(f"/proxies/{name}/toxics").json()]
    assert names == ["latency_upstream", "latency_downstream"]
    assert api.get(f"/proxies/{name}/toxics/latency_upstream").json()["stream"] == "upstream"
    assert_error(api.get(f"/proxies/{name}/toxics/nope"), 404, "toxic not found")


@pytest.mark.parametrize("method", ["PATCH", "POST"])
def test_toxic_update_merges_attributes(api: httpx.Client, make_proxy: Callable, method: str) -> None:
    name = make_proxy(UPSTREAM)["name"]
    api.post(f"/proxies/{name}/toxics", json={"type": "latency", "attributes": {"latency": 10, "jitter": 3}})
    url = f"/proxies/{name}/toxics/latency_downstream"
    resp = api.request(method, url, json={"attributes": {"latency": 20}, "toxicity": 0.5, "stream": "upstream"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["attributes"] == {"latency": 20, "jitter": 3}
    assert resp.json()["toxicity"] == 0.5 and resp.json()["stream"] == "downstream"
    assert_error(api.request(method, f"/proxies/{name}/toxics/nope", json={}), 404, "toxic not found")
    assert_error(api.request(method, url, json={"attributes": {"latency": -1}}), 400, "bad request body")


def test_toxic_delete_is_204(api: httpx.Client, make_proxy: Callable) -> None:
    name = make_proxy(UPSTREAM)["name"]
    api.post(f"/proxies/{name}/toxics", json={"type": "latency"})
    resp = api.delete(f"/proxies/{name}/toxics/latency_downstream")
    assert resp.status_code == 204 and resp.content == b""
    assert_error(api.delete(f"/proxies/{name}/toxics/latency_downstream"), 404, "toxic not found")


def test_reset_enables_proxies_and_removes_toxics(api: httpx.Client, make_proxy: Callable) -> None:
    name = make_proxy(UPSTREAM)["name"]
    api.post(f"/proxies/{name}/toxics", json={"type": "latency"})
    api.patch(f"/proxies/{name}", json={"enabled": False})
    resp = api.post("/reset")
    assert resp.status_code == 204 and resp.content == b""
    proxy = api.get(f"/proxies/{name}").json()
    assert proxy["enabled"] is True and proxy["toxics"] == []


def test_version(api: httpx.Client, embedded: bool) -> None:
    resp = api.get("/version")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json;charset=utf-8"
    assert resp.text.endswith("}\n") and json.loads(resp.text)["version"].startswith("2.")
    if embedded:
        assert resp.text == '{"version": "2.12.0"}\n'


def test_browsers_are_refused(api: httpx.Client) -> None:
    resp = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    assert resp.status_code == 403
    assert resp.text == "User agent not allowed\n"


def test_populate_adds_keeps_unchanged_and_replaces_changed(api: httpx.Client) -> None:
    with upstream() as first, upstream() as second:
        entry = {"name": "populated", "listen": "127.0.0.1:0", "upstream": first.address}
        try:
            resp = api.post("/populate", json=[entry])
            assert resp.status_code == 201, resp.text
            [proxy] = resp.json()["proxies"]
            assert proxy["name"] == "populated" and proxy["enabled"] is True
            listen = proxy["listen"]
            api.post("/proxies/populated/toxics", json={"type": "latency"})

            resp = api.post("/populate", json=[{**entry, "listen": listen}])
            assert resp.status_code == 201
            assert [t["name"] for t in resp.json()["proxies"][0]["toxics"]] == ["latency_downstream"]  # kept

            resp = api.post("/populate", json=[{**entry, "listen": listen, "upstream": second.address}])
            assert resp.status_code == 201
            assert resp.json()["proxies"][0]["upstream"] == second.address
            assert resp.json()["proxies"][0]["toxics"] == []  # replaced
            with connect(listen) as sock:
                round_trip_ms(sock)
            assert second.accepted == 1
        finally:
            api.delete("/proxies/populated")


def test_populate_errors(api: httpx.Client) -> None:
    resp = api.post("/populate", json=[{"name": "populate_bad"}])
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"] == "missing required field: upstream at proxy 1" and body["status"] == 400
    assert "proxies" in body
    assert api.get("/proxies/populate_bad").status_code == 404
    assert api.post("/populate", json={"name": "x"}).status_code == 400


def test_populate_resolves_host_names_so_an_unchanged_proxy_keeps_its_connections(api: httpx.Client) -> None:
    """Toxiproxy 2.12 (#631): `localhost:PORT` is the bound `127.0.0.1:PORT`, so a repeated populate that names
    the host leaves the proxy alone (listener, toxics, live connections); before, it was restarted."""
    with upstream() as server:
        port = _free_port()
        entry = {"name": "populated_by_name", "listen": f"localhost:{port}", "upstream": server.address}
        try:
            resp = api.post("/populate", json=[entry])
            assert resp.status_code == 201, resp.text
            assert resp.json()["proxies"][0]["listen"] == f"127.0.0.1:{port}"
            api.post("/proxies/populated_by_name/toxics", json={"type": "latency"})
            with connect(f"127.0.0.1:{port}") as sock:
                round_trip_ms(sock)
                resp = api.post("/populate", json=[entry])
                assert resp.status_code == 201
                assert [t["name"] for t in resp.json()["proxies"][0]["toxics"]] == ["latency_downstream"]
                round_trip_ms(sock)  # the same connection still works: nothing was restarted
        finally:
            api.delete("/proxies/populated_by_name")


def test_update_with_the_same_address_by_name_does_not_restart(api: httpx.Client, make_proxy: Callable) -> None:
    with upstream() as server:
        created = make_proxy(server.address)
        port = str(created["listen"]).rsplit(":", 1)[1]
        with connect(str(created["listen"])) as sock:
            round_trip_ms(sock)
            resp = api.patch(f"/proxies/{created['name']}", json={"listen": f"localhost:{port}"})
            assert resp.status_code == 200 and resp.json()["listen"] == created["listen"]
            round_trip_ms(sock)


def test_a_port_conflict_names_the_resolved_address(api: httpx.Client, make_proxy: Callable) -> None:
    created = make_proxy(UPSTREAM)
    port = str(created["listen"]).rsplit(":", 1)[1]
    resp = api.post("/proxies", json={"name": "busy_by_name", "upstream": UPSTREAM, "listen": f"localhost:{port}"})
    assert_error(resp, 500, f"listen tcp 127.0.0.1:{port}: bind: address already in use")


def test_a_listen_name_that_does_not_resolve_changes_nothing(api: httpx.Client, make_proxy: Callable) -> None:
    created = make_proxy(UPSTREAM)
    resp = api.patch(f"/proxies/{created['name']}", json={"listen": "no-such-host.invalid:1"})
    assert resp.status_code == 500 and "lookup no-such-host.invalid" in resp.json()["error"]
    assert api.get(f"/proxies/{created['name']}").json() == created


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
