"""Fixtures: the Toxiproxy under test (the server `TOXIPROXY_URL` names, else the embedded one), an httpx client
to it, and `make_proxy`, which creates uniquely named proxies and deletes them afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from harness.network.toxiproxy import build_app
from harness.procs import serving


@contextlib.contextmanager
def uvloop_server() -> Iterator[str]:
    """The embedded server on a uvloop event loop (what `harness toxiproxy serve` uses)."""
    import uvloop

    loop = uvloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner, port = asyncio.run_coroutine_threadsafe(serving.start_site(build_app(), "127.0.0.1", 0), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="session")
def toxiproxy_url() -> Iterator[str]:
    external = os.environ.get("TOXIPROXY_URL")
    if external:
        yield external.rstrip("/")
        return
    with serving.background(build_app) as server:
        yield server.url


@pytest.fixture(scope="session")
def embedded() -> bool:
    return not os.environ.get("TOXIPROXY_URL")


@pytest.fixture(scope="session", params=["asyncio", "uvloop"])
def data_url(request: pytest.FixtureRequest, toxiproxy_url: str) -> Iterator[str]:
    """For data-path tests: the server under test, plus the embedded one on uvloop when testing the embedded one."""
    if request.param == "asyncio":
        yield toxiproxy_url
    elif os.environ.get("TOXIPROXY_URL"):
        pytest.skip("uvloop variant applies to the embedded server only")
    else:
        with uvloop_server() as url:
            yield url


@pytest.fixture
def api(toxiproxy_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=toxiproxy_url, timeout=10) as client:
        yield client


@pytest.fixture
def data_api(data_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=data_url, timeout=10) as client:
        yield client


_names = itertools.count()


def _proxy_maker(client: httpx.Client) -> Iterator[Callable[..., dict[str, object]]]:
    created: list[str] = []

    def make(upstream: str, **extra: object) -> dict[str, object]:
        name = f"test_{os.getpid()}_{next(_names)}"
        resp = client.post("/proxies", json={"name": name, "upstream": upstream, "listen": "127.0.0.1:0", **extra})
        assert resp.status_code == 201, resp.text
        created.append(name)
        return dict(resp.json())

    yield make
    for name in created:
        client.delete(f"/proxies/{name}")


@pytest.fixture
def make_proxy(api: httpx.Client) -> Iterator[Callable[..., dict[str, object]]]:
    yield from _proxy_maker(api)


@pytest.fixture
def make_data_proxy(data_api: httpx.Client) -> Iterator[Callable[..., dict[str, object]]]:
    yield from _proxy_maker(data_api)
