"""latency over real TCP: accuracy, jitter bounds, order, live add and remove."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
from tolerance import assert_close
from tp_helpers import connect, percentile, recv_exactly, round_trip_ms, upstream


def measure_added_latency_ms(api: httpx.Client, make_proxy: Callable) -> list[float]:
    """Added round-trip time of 50 echoes through a 100 ms downstream latency toxic, over the direct median."""
    with upstream() as server:
        proxy = make_proxy(server.address)
        with connect(server.address) as direct:
            base = sorted(round_trip_ms(direct) for _ in range(20))[10]
        with connect(proxy["listen"]) as sock:
            round_trip_ms(sock)
            api.post(f"/proxies/{proxy['name']}/toxics", json={"type": "latency", "attributes": {"latency": 100}})
            return [round_trip_ms(sock) - base for _ in range(50)]


def test_latency_accuracy_p50_and_p99(api: httpx.Client, make_proxy: Callable) -> None:
    added = measure_added_latency_ms(api, make_proxy)
    assert_close(percentile(added, 50), 100, 2, "added latency p50 (ms)")
    if abs(percentile(added, 99) - 100) > 10:
        # p99 of 50 samples is nearly the maximum, so one scheduler stall of this (shared, 2-core) machine can
        # move it; a real regression fails the second measurement too.
        added = measure_added_latency_ms(api, make_proxy)
    assert_close(percentile(added, 99), 100, 10, "added latency p99 (ms)")


def test_jitter_stays_within_bounds_and_varies(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    with upstream() as server:
        proxy = make_data_proxy(server.address)
        attributes = {"latency": 40, "jitter": 15}
        with connect(proxy["listen"]) as sock:
            round_trip_ms(sock)  # the first round trip also dials upstream: keep it out of the samples
            data_api.post(f"/proxies/{proxy['name']}/toxics", json={"type": "latency", "attributes": attributes})
            samples = [round_trip_ms(sock) for _ in range(25)]
    assert min(samples) >= 25 - 1 and max(samples) <= 55 + 10, samples
    assert max(samples) - min(samples) > 5, samples  # uniform ± 15 ms: 25 equal delays would mean no jitter


def test_chunks_are_never_reordered(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    with upstream() as server:
        proxy = make_data_proxy(server.address)
        data_api.post(
            f"/proxies/{proxy['name']}/toxics", json={"type": "latency", "attributes": {"latency": 20, "jitter": 19}}
        )
        messages = [f"{i:05d};".encode() for i in range(300)]
        expected = b"".join(messages)
        with connect(proxy["listen"]) as sock:
            sender = threading.Thread(target=lambda: [sock.sendall(m) for m in messages])
            sender.start()
            received = recv_exactly(sock, len(expected))
            sender.join(5)
    assert received == expected


def test_adding_and_removing_latency_on_a_live_connection(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    with upstream() as server:
        proxy = make_data_proxy(server.address)
        url = f"/proxies/{proxy['name']}/toxics"
        with connect(proxy["listen"]) as sock:
            assert round_trip_ms(sock) < 30
            data_api.post(url, json={"type": "latency", "stream": "upstream", "attributes": {"latency": 60}})
            assert_close(round_trip_ms(sock), 60, 15, "round trip with upstream latency (ms)")
            data_api.patch(f"{url}/latency_upstream", json={"attributes": {"latency": 120}})
            assert_close(round_trip_ms(sock), 120, 15, "round trip after update (ms)")
            data_api.delete(f"{url}/latency_upstream")
            assert round_trip_ms(sock) < 30
            assert round_trip_ms(sock, b"x" * 100_000) < 1000  # back to direct, data intact


def test_toxicity_zero_never_applies_and_update_rerolls(data_api: httpx.Client, make_data_proxy: Callable) -> None:
    with upstream() as server:
        proxy = make_data_proxy(server.address)
        url = f"/proxies/{proxy['name']}/toxics"
        data_api.post(url, json={"type": "latency", "toxicity": 0, "attributes": {"latency": 200}})
        with connect(proxy["listen"]) as sock:
            assert round_trip_ms(sock) < 100
            data_api.patch(f"{url}/latency_downstream", json={"toxicity": 1})
            assert round_trip_ms(sock) >= 195
