"""The Toxiproxy client against the embedded Toxiproxy server over real sockets (the same API as the real one)."""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.errors import NetworkShapingError
from harness.network.profiles import NetworkProfile, parse_profile
from harness.network.render import toxiproxy_toxics
from harness.network.toxiproxy_client import ToxiproxyClient

if importlib.util.find_spec("harness.network.toxiproxy.api") is None:
    pytest.skip("embedded toxiproxy not yet available", allow_module_level=True)

from harness.network.toxiproxy.api import build_app
from harness.procs.serving import background


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with background(build_app) as srv:
        yield srv.url


@pytest.fixture
def client(server_url: str) -> Iterator[ToxiproxyClient]:
    with ToxiproxyClient(server_url) as tp:
        tp.reset()
        for name in tp.proxies():
            tp.delete_proxy(name)
        yield tp


@pytest.fixture
def echo_upstream() -> Iterator[str]:
    """A plain TCP echo server: the proxies' upstream."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    def echo(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    listener.close()


def latency_profile(one_way_ms: float) -> NetworkProfile:
    data: dict[str, Any] = {"latency": {"one_way_ms": one_way_ms, "one_way_ms_source": "assumption"}}
    return parse_profile(data, "test", "test-latency")


def round_trip_s(port: int) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        started = time.monotonic()
        conn.sendall(b"ping")
        assert conn.recv(16) == b"ping"
        return time.monotonic() - started


def test_version(client: ToxiproxyClient) -> None:
    assert client.version().startswith("2.")


def test_proxy_lifecycle(client: ToxiproxyClient, echo_upstream: str) -> None:
    proxy = client.create_proxy("api", echo_upstream)
    assert proxy.listen_port > 0  # port 0 comes back as the real port
    assert client.get_proxy("api") == proxy
    assert set(client.proxies()) == {"api"}
    assert round_trip_s(proxy.listen_port) >= 0
    assert client.update_proxy("api", enabled=False).enabled is False
    assert client.update_proxy("api", enabled=True).upstream == echo_upstream
    client.delete_proxy("api")
    with pytest.raises(NetworkShapingError, match=r"^Toxiproxy GET /proxies/api failed with 404: proxy not found$"):
        client.get_proxy("api")


def test_duplicate_proxy_carries_the_server_message(client: ToxiproxyClient, echo_upstream: str) -> None:
    client.create_proxy("api", echo_upstream)
    with pytest.raises(NetworkShapingError, match=r"failed with 409: proxy already exists"):
        client.create_proxy("api", echo_upstream)


def test_toxic_add_update_remove(client: ToxiproxyClient, echo_upstream: str) -> None:
    client.create_proxy("api", echo_upstream)
    toxic = {"name": "lat", "type": "latency", "stream": "downstream", "toxicity": 1.0, "attributes": {"latency": 5}}
    assert client.add_toxic("api", toxic)["attributes"]["latency"] == 5
    updated = client.update_toxic("api", "lat", attributes={"latency": 7, "jitter": 1}, toxicity=0.5)
    assert (updated["attributes"]["latency"], updated["toxicity"]) == (7, 0.5)
    assert [t["name"] for t in client.toxics("api")] == ["lat"]
    client.remove_toxic("api", "lat")
    assert client.toxics("api") == []
    with pytest.raises(NetworkShapingError, match=r"404: toxic not found"):
        client.remove_toxic("api", "lat")


def test_populate_and_reset(client: ToxiproxyClient, echo_upstream: str) -> None:
    made = client.populate([{"name": "a", "upstream": echo_upstream, "listen": "127.0.0.1:0"}])
    assert [p.name for p in made] == ["a"]
    client.add_toxic("a", toxiproxy_toxics(latency_profile(3))[0])
    client.reset()
    assert client.toxics("a") == []


def test_ensure_proxies_creates_keeps_and_repoints(client: ToxiproxyClient, echo_upstream: str) -> None:
    first = client.ensure_proxies({"sg": echo_upstream})
    again = client.ensure_proxies({"sg": echo_upstream})
    assert again["sg"].listen == first["sg"].listen
    moved = client.ensure_proxies({"sg": "127.0.0.1:9"})
    assert moved["sg"].upstream == "127.0.0.1:9"
    assert moved["sg"].listen == first["sg"].listen


def test_applied_installs_rendered_toxics_and_always_removes_them(client: ToxiproxyClient, echo_upstream: str) -> None:
    port = client.create_proxy("api", echo_upstream).listen_port
    profile = latency_profile(40)
    with client.applied(profile, ["api"]) as toxics:
        assert sorted(t["name"] for t in client.toxics("api")) == sorted(t["name"] for t in toxics)
        assert round_trip_s(port) >= 0.075  # 40 ms each way (lower bound only: never flaky)
    assert client.toxics("api") == []
    with pytest.raises(RuntimeError), client.applied(profile, ["api"]):
        raise RuntimeError("run failed")
    assert client.toxics("api") == []


def test_applied_undoes_a_half_applied_profile(client: ToxiproxyClient, echo_upstream: str) -> None:
    client.create_proxy("api", echo_upstream)
    with (
        pytest.raises(NetworkShapingError, match=r"404: proxy not found"),
        client.applied(latency_profile(5), ["api", "missing"]),
    ):
        pass
    assert client.toxics("api") == []


def test_unreachable_server_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    with (
        ToxiproxyClient(f"http://127.0.0.1:{port}", timeout_s=2) as tp,
        pytest.raises(NetworkShapingError, match=rf"^cannot reach Toxiproxy at http://127.0.0.1:{port} \(GET /proxies"),
    ):
        tp.proxies()


def test_cli_apply_then_clear(client: ToxiproxyClient, echo_upstream: str, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    client.create_proxy("api", echo_upstream)
    url = client.base_url
    argv = ["net", "apply", "cn-telecom-peak-to-tokyo", "--overlay", "gfw-hostile", "--toxiproxy", url]
    assert main([*argv, "--proxy", "api"]) == 0
    names = {t["name"] for t in client.toxics("api")}
    assert {"latency_downstream", "bandwidth_downstream", "timeout_downstream", "reset_peer_upstream"} <= names
    assert main([*argv, "--proxy", "api"]) == 0  # applying again replaces, no 409
    assert "Toxiproxy cannot drop packets" in capsys.readouterr().out
    assert main(["net", "clear", "--toxiproxy", url]) == 0
    assert client.toxics("api") == []
