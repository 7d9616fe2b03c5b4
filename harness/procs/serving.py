"""Run aiohttp applications: in the foreground until a signal, or in a background thread for tests and runs.

Every server of the reference stack and the embedded Toxiproxy is an `aiohttp.web.Application`; this module is
the one place that binds them to sockets, so port 0 (the OS picks) works the same everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from aiohttp import web

from harness.procs.gctune import tune_gc

AppFactory = Callable[[], web.Application | Awaitable[web.Application]]

SHUTDOWN_TIMEOUT_S = 5.0
"""How long open connections (websockets included) get to finish when a server stops."""


def install_uvloop() -> None:
    """Use uvloop where it is installed: it roughly doubles aiohttp's request rate on this kind of machine."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Bind `app` to host:port (0 = any free port); return the runner and the real port."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, backlog=2048)
    await site.start()
    server = site._server  # asyncio's or uvloop's Server: both expose .sockets
    assert server is not None
    sockets = getattr(server, "sockets")  # noqa: B009 - not on AbstractServer's type, present on both servers
    bound_port = int(sockets[0].getsockname()[1])
    return runner, bound_port


async def _make(factory: AppFactory) -> web.Application:
    app = factory()
    if asyncio.iscoroutine(app) or isinstance(app, Awaitable):
        app = await app
    assert isinstance(app, web.Application)
    return app


def serve_forever(factory: AppFactory, host: str, port: int, on_ready: Callable[[int], None] | None = None) -> None:
    """Serve in the foreground until SIGINT or SIGTERM, then shut down cleanly."""
    install_uvloop()

    async def main() -> None:
        app = await _make(factory)
        runner, bound = await start_site(app, host, port)
        tune_gc()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if on_ready:
            on_ready(bound)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())


@dataclass
class BackgroundServer:
    """A server running on its own event loop in a daemon thread: `with BackgroundServer(factory) as srv:`.

    `srv.port` is the bound port and `srv.url` its base URL. `srv.app` is the application, for tests that need to
    reach into it; touch its state only through `srv.call(coro_fn)`, which runs on the server's loop.
    """

    factory: AppFactory
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="harness-server", daemon=True)
        self._runner: web.AppRunner | None = None
        self.app: web.Application | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def call(self, fn: Callable[[], Awaitable[object]], timeout: float = 30.0) -> object:
        return asyncio.run_coroutine_threadsafe(_await(fn), self.loop).result(timeout)

    def start(self) -> BackgroundServer:
        self._thread.start()

        async def boot() -> int:
            self.app = await _make(self.factory)
            self._runner, bound = await start_site(self.app, self.host, self.port)
            return bound

        self.port = asyncio.run_coroutine_threadsafe(boot(), self.loop).result(30)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(SHUTDOWN_TIMEOUT_S + 10)
            self._runner = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _await(fn: Callable[[], Awaitable[object]]) -> object:
    return await fn()


@contextlib.contextmanager
def background(factory: AppFactory, host: str = "127.0.0.1", port: int = 0) -> Iterator[BackgroundServer]:
    with BackgroundServer(factory, host, port) as server:
        yield server
