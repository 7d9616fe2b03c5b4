"""The /metrics HTTP endpoint: a small threaded WSGI server (the standard library's, as prometheus-client's own
`start_http_server` uses) that renders `families(monitor.view())` on every scrape, in the text format or
OpenMetrics as Prometheus asks.

    exporting(options) ─► listen on bind:port ─► the run ─► monitor.finish(verdict)
        ─► linger: serve until a scrape has read the finished state (gates, verdict), at most `linger_s` ─► close
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any, TextIO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from harness.errors import ConfigError
from harness.monitor.families import render
from harness.monitor.state import RunMonitor

METRICS_PATH = "/metrics"


@dataclass(frozen=True)
class MetricsOptions:
    port: int
    """TCP port; 0 picks a free one (the Python API; on the command line 0 means off)."""
    bind: str = "127.0.0.1"
    linger_s: float = 0.0
    """After the run: keep serving until Prometheus has scraped the finished state once, at most this long."""


class _Body:
    """The response body; WSGI calls `close()` once the last byte is written, which is when a scrape counts."""

    def __init__(self, data: bytes, on_close: Callable[[], None]) -> None:
        self.data = data
        self.on_close = on_close

    def __iter__(self) -> Iterator[bytes]:
        yield self.data

    def close(self) -> None:
        self.on_close()


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # a scrape every few seconds is not news
        pass


class MetricsServer:
    def __init__(self, monitor: RunMonitor, options: MetricsOptions) -> None:
        self.monitor = monitor
        self.options = options
        self._final_scrape = threading.Event()
        self._httpd: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> MetricsServer:
        server_class = _Server6 if ":" in self.options.bind else _Server
        try:
            self._httpd = make_server(
                self.options.bind, self.options.port, self._app, server_class=server_class, handler_class=_QuietHandler
            )
        except OSError as exc:
            raise ConfigError(
                f"--metrics-port {self.options.port}: cannot listen on {self.options.bind}:{self.options.port} "
                f"({exc.strerror or exc}); pick a free port, or another --metrics-bind address"
            ) from None
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="harness-metrics", daemon=True
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_port)

    @property
    def url(self) -> str:
        host = f"[{self.options.bind}]" if ":" in self.options.bind else self.options.bind
        return f"http://{host}:{self.port}{METRICS_PATH}"

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != METRICS_PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [f"harness metrics are at {METRICS_PATH}\n".encode()]
        view = self.monitor.view()
        data, content_type = render(view, str(environ.get("HTTP_ACCEPT") or ""))
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(data)))])
        final = view.state == "finished"
        return _Body(data, self._final_scrape.set if final else lambda: None)

    def linger(self) -> bool:
        """Waits until a scrape has read the finished state, at most `linger_s`; True if one did."""
        return self._final_scrape.wait(self.options.linger_s)

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)


@contextlib.contextmanager
def exporting(options: MetricsOptions | None, log: TextIO = sys.stderr) -> Iterator[RunMonitor]:
    """A RunMonitor for the run, served on /metrics when `options` is given. The body calls `finish(verdict)`
    when judged; an exception finishes it without a verdict. Ctrl-C skips the linger."""
    monitor = RunMonitor()
    if options is None:
        yield monitor
        return
    server = MetricsServer(monitor, options).start()
    print(f"harness: metrics on {server.url}", file=log, flush=True)
    lingering = True
    try:
        yield monitor
    except KeyboardInterrupt:
        lingering = False
        raise
    finally:
        if not monitor.finished:
            monitor.finish(None)
        try:
            if lingering and options.linger_s > 0:
                if server.linger():
                    print("harness: metrics: the final state was scraped", file=log, flush=True)
                else:
                    print(f"harness: metrics: no scrape within {options.linger_s:g} s of the end", file=log)
        finally:
            server.stop()
