"""Origin health: a threshold state machine per origin, and the background task that probes `GET <origin>/health`.

An origin turns unhealthy after `failure_threshold` failed probes in a row and healthy again after
`recovery_threshold` good ones in a row (like an ALB target group or a Route 53 health check). Origins start
healthy, so the edge routes before the first probe returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

log = logging.getLogger(__name__)


@dataclass
class OriginHealth:
    """One origin's state. `transitions` counts healthy↔unhealthy changes (useful for flapping checks)."""

    healthy: bool = True
    consecutive_successes: int = 0
    consecutive_failures: int = 0
    checks: int = 0
    transitions: int = 0
    last_error: str | None = None
    last_check_unix_s: float | None = None
    changed_unix_s: float | None = None

    def record(self, ok: bool, error: str | None, failure_threshold: int, recovery_threshold: int) -> bool:
        """Count one probe result; return True when the health state flipped."""
        self.checks += 1
        self.last_check_unix_s = time.time()
        self.last_error = error
        if ok:
            self.consecutive_successes += 1
            self.consecutive_failures = 0
            flip = not self.healthy and self.consecutive_successes >= recovery_threshold
        else:
            self.consecutive_failures += 1
            self.consecutive_successes = 0
            flip = self.healthy and self.consecutive_failures >= failure_threshold
        if flip:
            self.healthy = not self.healthy
            self.transitions += 1
            self.changed_unix_s = self.last_check_unix_s
        return flip

    def as_dict(self) -> dict[str, object]:
        return {
            "healthy": self.healthy,
            "consecutive_successes": self.consecutive_successes,
            "consecutive_failures": self.consecutive_failures,
            "checks": self.checks,
            "transitions": self.transitions,
            "last_error": self.last_error,
            "last_check_unix_s": self.last_check_unix_s,
            "changed_unix_s": self.changed_unix_s,
        }


@dataclass
class HealthChecker:
    """Probes every origin each `interval_s`; a probe passes on any 2xx/3xx answer within `timeout_s`."""

    origins: Mapping[str, str]
    interval_s: float = 1.0
    """Seconds between probe rounds. Failover takes about interval_s × failure_threshold."""
    failure_threshold: int = 3
    """Failed probes in a row that mark an origin unhealthy."""
    recovery_threshold: int = 2
    """Good probes in a row that mark an unhealthy origin healthy again."""
    path: str = "/health"
    timeout_s: float | None = None
    """Per-probe timeout; defaults to interval_s (a probe never overlaps the next round)."""

    def __post_init__(self) -> None:
        self.state: dict[str, OriginHealth] = {region: OriginHealth() for region in self.origins}

    def health_map(self) -> dict[str, bool]:
        return {region: s.healthy for region, s in self.state.items()}

    async def probe(self, session: aiohttp.ClientSession, region: str) -> None:
        url = self.origins[region].rstrip("/") + self.path
        timeout = aiohttp.ClientTimeout(total=self.timeout_s if self.timeout_s is not None else self.interval_s)
        error: str | None = None
        try:
            async with session.get(url, timeout=timeout, allow_redirects=False) as resp:
                await resp.read()
                if not 200 <= resp.status < 400:
                    error = f"HTTP {resp.status}"
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        state = self.state[region]
        if state.record(error is None, error, self.failure_threshold, self.recovery_threshold):
            # Said in the edge's log: a flip moves traffic between regions (under overload a slow /health alone can
            # do it, and reads then land on a replica that may not have the latest writes yet).
            if state.healthy:
                log.warning("edge: origin %s healthy again after %d good probes", region, state.consecutive_successes)
            else:
                log.warning("edge: origin %s unhealthy after %d failed probes (last: %s); traffic moves to the other "
                            "region", region, state.consecutive_failures, error)  # fmt: skip

    async def run(self) -> None:
        """Probe rounds forever, one round every interval_s (the round's own duration included)."""
        # A separate small pool: probes must not queue behind proxied traffic, or load alone would fail an origin.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False) as session:
            loop = asyncio.get_running_loop()
            while True:
                started = loop.time()
                await asyncio.gather(*(self.probe(session, region) for region in self.origins))
                await asyncio.sleep(max(0.0, self.interval_s - (loop.time() - started)))

    def start(self) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(self.run(), name="edge-health-checker")


async def stop_task(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
