"""The /metrics endpoint over real HTTP: formats, paths, the linger after the run, a taken port."""

from __future__ import annotations

import io
import re
import socket
import threading
from pathlib import Path

import httpx
import pytest
from monitor_synth import monitor_with, synth, verdict_of

from harness.errors import ConfigError
from harness.monitor import MetricsOptions, MetricsServer, exporting
from harness.monitor import names as n
from harness.monitor.state import RunMonitor

OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def test_serves_the_text_format_or_openmetrics_and_nothing_else(tmp_path: Path) -> None:
    server = MetricsServer(monitor_with(synth(), tmp_path), MetricsOptions(port=0)).start()
    try:
        text = httpx.get(server.url, timeout=10)
        assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert 'harness_requests_total{group="baseline",request="home",type="GET"} 253.0' in text.text
        om = httpx.get(server.url, headers={"Accept": OPENMETRICS}, timeout=10)
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.text.endswith("# EOF\n") and "# TYPE harness_requests counter" in om.text
        other = httpx.get(server.url.removesuffix("/metrics") + "/", timeout=10)
        assert other.status_code == 404 and "/metrics" in other.text
    finally:
        server.stop()


def test_after_the_run_it_serves_until_the_finished_state_is_scraped(tmp_path: Path) -> None:
    s = synth()
    log = io.StringIO()
    scraped: list[str] = []
    first_done = threading.Event()
    holder: dict[str, RunMonitor] = {}

    def prometheus(url: str) -> None:
        scraped.append(httpx.get(url, timeout=10).text)  # while the run goes on: does not end the linger
        first_done.set()
        for _ in range(600):
            if holder["monitor"].finished:
                break
            threading.Event().wait(0.05)
        scraped.append(httpx.get(url, timeout=10).text)

    with exporting(MetricsOptions(port=0, linger_s=60), log) as monitor:
        monitor.begin("r", "p", "t", tmp_path / "progress.json")
        holder["monitor"] = monitor
        match = re.search(r"metrics on (\S+)", log.getvalue())
        assert match, log.getvalue()
        thread = threading.Thread(target=prometheus, args=(match.group(1),))
        thread.start()
        assert first_done.wait(30)
        monitor.finish(verdict_of(s))
    thread.join(30)
    assert 'harness_run_state{state="starting"} 1.0' in scraped[0]
    assert 'harness_run_state{state="finished"} 1.0' in scraped[1] and n.VERDICT in scraped[1]
    assert "the final state was scraped" in log.getvalue()
    with pytest.raises(httpx.ConnectError):  # closed once scraped
        httpx.get(match.group(1), timeout=5)


def test_the_linger_is_bounded_when_nobody_scrapes() -> None:
    log = io.StringIO()
    with exporting(MetricsOptions(port=0, linger_s=0.2), log):
        pass
    assert "no scrape within 0.2 s of the end" in log.getvalue()


def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"--metrics-port {port}: cannot listen on 127.0.0.1:{port} \("):
            MetricsServer(RunMonitor(), MetricsOptions(port=port)).start()
