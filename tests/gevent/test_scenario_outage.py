"""A target that dies mid-run: counted failures and a clean end (no user errors, Locust quits, cleanup gives up
politely), never a crash."""

from __future__ import annotations

import time
from dataclasses import replace

import gevent
from scenario_runs import Run, load_locustfile, quick, run_users

from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts
from harness.scenarios.settings import ScenarioSettings

SETTINGS = ScenarioSettings(delivery_timeout_s=2.0, provision_users=4)


def test_killing_the_region_mid_run_gives_counted_failures_and_a_clean_end() -> None:
    messaging = load_locustfile("messaging")
    with ReferenceStack(StackConfig(ports=StackPorts.any(), pieces=("primary",))) as stack:
        sent_before_kill: list[int] = []

        def kill_soon(run: Run) -> None:
            def kill() -> None:
                deadline = time.monotonic() + 8.0
                while time.monotonic() < deadline and len(run.samples("REST insert messages", failed=False)) < 3:
                    gevent.sleep(0.05)
                sent_before_kill.append(len(run.samples("REST insert messages", failed=False)))
                stack.processes.pop("primary").stop()

            gevent.spawn(kill)

        run = run_users(
            [quick(messaging.MessagingUser, 0.1)], stack.endpoints.primary_url, 4, replace(SETTINGS),
            min_s=1, max_s=15, during=kill_soon,
            done=lambda r: bool(sent_before_kill) and len(r.failures()) >= 5,
        )  # fmt: skip
    assert sent_before_kill and sent_before_kill[0] > 0  # the run was healthy first
    assert run.user_errors == []
    failures = run.failures()
    assert failures, "an outage must show as failures"
    assert any(f.startswith(("REST ", "RT connection", "RT reconnect")) for f in failures)
    assert run.state is not None and run.state.provisioned_path is None  # cleanup tried, and let go
