"""The official client, toxiproxy-python 0.1.1, against the server under test (docs/protocols.md §8.3)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists
from toxiproxy.proxy import Proxy
from tp_helpers import connect, round_trip_ms, upstream

_names = itertools.count()


@pytest.fixture
def client(toxiproxy_url: str) -> Iterator[Toxiproxy]:
    # Host and port are class attributes shared by every instance (pitfall 6): restore them afterwards.
    saved = APIConsumer.host, APIConsumer.port
    url = urlsplit(toxiproxy_url)
    APIConsumer.host, APIConsumer.port = url.hostname, url.port
    try:
        yield Toxiproxy()
    finally:
        APIConsumer.host, APIConsumer.port = saved


@pytest.fixture
def proxy(client: Toxiproxy) -> Iterator[Proxy]:
    with upstream() as server:
        created = client.create(upstream=server.address, name=f"py_{os.getpid()}_{next(_names)}")
        try:
            yield created
        finally:
            client.destroy(created)


def test_running_and_version(client: Toxiproxy) -> None:
    assert client.running()
    version = client.version()
    assert isinstance(version, bytes) and b'"version"' in version


def test_create_reports_the_real_port_and_lists_the_proxy(client: Toxiproxy, proxy: Proxy) -> None:
    assert not proxy.listen.endswith(":0")
    assert proxy.enabled is True
    assert client.get_proxy(proxy.name).listen == proxy.listen
    with pytest.raises(ProxyExists):
        client.create(upstream=proxy.upstream, name=proxy.name)


def test_toxics_add_list_get_destroy(proxy: Proxy) -> None:
    proxy.add_toxic(type="latency", attributes={"latency": 50, "jitter": 5})
    proxy.add_toxic(type="latency", stream="upstream", name="lag_up", toxicity=0.5)
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "lag_up"}
    assert toxics["latency_downstream"].attributes == {"latency": 50, "jitter": 5}
    assert proxy.get_toxic("lag_up").toxicity == 0.5 and proxy.get_toxic("lag_up").stream == "upstream"
    with pytest.raises(ProxyExists):  # a duplicate toxic is 409, which the client names ProxyExists
        proxy.add_toxic(type="latency")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="bandwidth", name="neg", attributes={"rate": -5})
    assert proxy.destroy_toxic("lag_up") is True
    with pytest.raises(NotFound):
        proxy.destroy_toxic("lag_up")
    assert set(proxy.toxics()) == {"latency_downstream"}


def test_latency_toxic_slows_round_trips(proxy: Proxy) -> None:
    with connect(proxy.listen) as sock:
        assert round_trip_ms(sock) < 50
        proxy.add_toxic(type="latency", attributes={"latency": 120})
        assert round_trip_ms(sock) >= 115


def test_down_refuses_connections_then_recovers(proxy: Proxy) -> None:
    with proxy.down(), pytest.raises(ConnectionRefusedError):
        connect(proxy.listen)
    with connect(proxy.listen) as sock:
        round_trip_ms(sock)


def test_reset_removes_toxics_and_reenables(client: Toxiproxy, proxy: Proxy) -> None:
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    proxy.disable()
    assert client.reset() is True
    assert proxy.toxics() == {}
    assert client.get_proxy(proxy.name).enabled is True


def test_populate_and_destroy(client: Toxiproxy) -> None:
    with upstream() as server:
        name = f"py_pop_{os.getpid()}"
        [created] = client.populate([{"name": name, "upstream": server.address, "listen": "127.0.0.1:0"}])
        try:
            assert client.get_proxy(name).upstream == server.address
        finally:
            assert client.destroy(created) is True
        assert client.get_proxy(name) is None
