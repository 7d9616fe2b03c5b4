"""Prometheus metrics of a live run: `harness run … --metrics-port 9646` serves /metrics (docs/monitoring.md).

Where it lives, and why: in the orchestrator (`harness run`), not inside the Locust master.

    Locust master (gevent)                          orchestrator (plain Python, threads)
    worker payloads ─► LiveTally ─► progress.json ─► RunMonitor.view() on each scrape ─► families() ─► /metrics
    (every second: run totals, last 30 s sketches)   + run id, state, gates and verdict it knows itself

- The orchestrator already knows what the master cannot: the run's state before Locust starts (target, test
  users, shaping) and after it stops (collecting, gating), and the verdict with every gate. The master knows only
  its Locust run.
- It is a plain threaded process, so prometheus-client and a standard-library HTTP server run as designed; in the
  master, gevent's monkey-patching would turn the server thread into a greenlet that competes with the master's
  merges and worker messages.
- progress.json was already the one channel from master to orchestrator (every second); it gained a bounded
  `live` object (harness/model/live.py), so no new process, port or protocol is involved. In distributed mode the
  orchestrator and the master are the same container or pod, so Prometheus scrapes the same address.

Modules: `names.py` every metric name and help text; `state.py` the run's state as the orchestrator sets it plus
the master's progress; `families.py` the metric families of one scrape (pure); `server.py` the HTTP endpoint.
"""

from harness.monitor.server import MetricsOptions, MetricsServer, exporting
from harness.monitor.state import RunMonitor, View

__all__ = ["MetricsOptions", "MetricsServer", "RunMonitor", "View", "exporting"]
