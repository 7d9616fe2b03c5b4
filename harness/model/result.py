"""The run result: what every worker measured, merged, plus the run's metadata (schema in docs/result-schema.md).

    worker process                         master process                       anywhere later
    ResultBuilder.record() per request     ResultBuilder.merge(payload)         load_result(result.json)
    to_payload(reset=True) every report ──► build(run, gates) ──► dump_result ──► gates.evaluate / harness report
          (Locust report_to_master)          (worker_report hook)

Times are Unix seconds. Samples are kept per time window (`window_s`, aligned to multiples of it in Unix time, so
workers need no shared clock origin) and per (request name, request type, user group); the steady-state figures
merge the windows inside the plateau. Latency sketches hold successful samples only; failures are counted by kind.
Origin regions are tallied per stat, and per user class within it (`origins_by_class`, schema 1.1). Open-model
iterations are counted per window and user class (`Window.arrivals`, with the plan in `Result.arrival`, schema 1.3).
Delivery hops (schema 1.4): workers also ship their per-hop message counts and delivery-leg sketches (payload 4,
`record_hops`); the orchestrator adds the servers' counts and the attribution (harness/model/hops.py).
Requests whose client times their legs (connect, wait, body: harness/clients/http.py; websocket connects) also carry
`legs` (schema 1.5): connection reuse counts, a sketch per leg and leg sums per coarse bucket of the total, which
harness/model/breakdown.py reads to say which requests and legs make up a p95.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, ValidationError

from harness.errors import ConfigError
from harness.model.files import MAX_DATA_BYTES, parse_json, read_text, show_value
from harness.model.hops import DeliveryHops, HopWindow, LegWindow
from harness.model.profile import MIN_WINDOW_S, Arrival, GatesConfig
from harness.model.sketch import Sketch

SCHEMA_VERSION: Literal[1] = 1
"""Bumped on any change that an older reader would misread; `load_result` refuses other versions."""
SCHEMA_MINOR = 5
"""Bumped when fields are added (1.1: `origins_by_class`, 1.2: `process_cpu`, 1.3: open-model `arrival` and
`Window.arrivals`, 1.4: `hops`, 1.5: request `legs` and `run.networks`); files of any earlier minor read with
the defaults."""

PAYLOAD_VERSION = 5
"""Version of the worker → master payload (2 adds a stats column: origins by user class; 3 adds `arrivals`;
4 adds `hops`: delivery hop counts and leg sketches; 5 adds a stats column: request legs); `merge` reads 1 to 5."""
_PAYLOAD_VERSIONS = (1, 2, 3, 4, 5)

DEFAULT_FAILURE_KIND = "error"
"""Failure kind recorded when the caller gives none."""

TAIL_GAMMA = 2**0.25
"""Width of the coarse buckets of a request's total time in which `Legs.tail` sums its legs (about 19 %)."""
_INV_LOG_TAIL = 1.0 / math.log(TAIL_GAMMA)
_log = math.log
_ceil = math.ceil


MAX_UNIX_S = 253_402_300_799.0
"""9999-12-31T23:59:59Z: the latest time a report can print as a date."""
UnixSeconds = Annotated[float, Field(ge=0, le=MAX_UNIX_S)]
"""A point in time in Unix seconds (result.json is read from anywhere: a time a report cannot print is refused)."""


def _sketch_in(v: Any) -> Sketch:
    return v if isinstance(v, Sketch) else Sketch.from_dict(v)


SketchField = Annotated[Sketch, PlainValidator(_sketch_in), PlainSerializer(lambda s: s.to_dict())]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class SmokeCheck(_Model):
    name: str
    passed: bool
    message: str = ""


class CpuSample(_Model):
    t_s: UnixSeconds
    worker: str
    cpu_pct: float


class UsersSample(_Model):
    t_s: UnixSeconds
    users: int


class GroupInfo(_Model):
    network: str
    country: str | None = None


class SteadyState(_Model):
    """The plateau in Unix seconds."""

    start_s: UnixSeconds
    end_s: UnixSeconds

    @classmethod
    def from_plateau(cls, started_s: float, plateau_s: tuple[float, float]) -> SteadyState:
        """From `Profile.plateau_s()` (seconds from the run start) and the run's Unix start time."""
        return cls(start_s=started_s + plateau_s[0], end_s=started_s + plateau_s[1])


class NetworkConditions(_Model):
    """What a shaped group's path applied (schema 1.2), for the report's network prediction
    (harness/model/network_predict.py). Latency and jitter come from the Toxiproxy toxics, loss only with --kernel."""

    profile: str
    rtt_ms: float = 0.0
    """Round trip added by the path (twice the one-way latency toxic)."""
    jitter_ms: float = 0.0
    """± uniform variation of each direction's latency (Toxiproxy jitter)."""
    loss_pct: float = 0.0
    """Downstream packet loss the profile configures."""
    loss_applied: bool = False
    """True only when the kernel dropped packets (--kernel); Toxiproxy cannot drop packets."""
    down_kbps: float | None = None
    up_kbps: float | None = None
    stall_pct: float = 0.0
    """Share of connections (%) the path stalls (Toxiproxy `timeout`), then closes."""
    stall_ms: float = 0.0
    tls: bool = False
    """The group's URLs are https (a new connection then pays the TLS handshake too)."""


class RunInfo(_Model):
    run_id: str
    profile: str
    started_s: UnixSeconds
    ended_s: UnixSeconds
    target: str
    workers_expected: int
    workers_seen: int
    partial: bool = False
    """The run stopped early (interrupted, aborted): its figures do not cover the planned shape."""
    target_reachable: bool = True
    steady_state: SteadyState | None = None
    groups: dict[str, GroupInfo] = Field(default_factory=dict)
    network_profiles: dict[str, str] = Field(default_factory=dict)
    """Network profile name → its content hash or version, recorded for the report."""
    smoke_checks: list[SmokeCheck] = Field(default_factory=list)
    networks: dict[str, NetworkConditions] = Field(default_factory=dict)
    """Group → the conditions its shaped path applied (schema 1.2; empty for unshaped runs and older files)."""

    @property
    def duration_s(self) -> float:
        return max(0.0, self.ended_s - self.started_s)


class Stat(_Model):
    """Counts for one (request name, request type, group) in one window."""

    name: str
    request_type: str
    group: str
    count: int
    """Every request, successful or failed."""
    failures: dict[str, int] = Field(default_factory=dict)
    """Failed requests by kind (e.g. `error`, `timeout`, `lost`, `duplicate`)."""
    bytes: int = 0
    sketch: SketchField = Field(default_factory=Sketch)
    """Latency of successful requests, ms."""
    origins: dict[str, int] = Field(default_factory=dict)
    """Responses by origin region (from the origin-region header)."""
    origins_by_class: dict[str, dict[str, int]] = Field(default_factory=dict)
    """Responses by user class, then origin region (schema 1.1; empty in older files and for unlabelled requests)."""
    legs: Legs | None = None
    """Connect / wait / body of requests whose client times them (schema 1.2; None in older files and for others)."""


class ArrivalStat(_Model):
    """Open-model iterations of one user class in one window (schema 1.3), all workers together."""

    user_class: str
    target: float = 0.0
    """Iterations due by the schedule in this window (the integral of the target rate)."""
    started: int = 0
    """Iterations handed to a free user (a task pick)."""
    dropped: int = 0
    """Iterations due when no user of the pool was free (k6's dropped_iterations)."""
    completed: int = 0
    """Iterations whose task returned (in the window it returned in)."""

    def add(self, other: ArrivalStat) -> None:
        self.target += other.target
        self.started += other.started
        self.dropped += other.dropped
        self.completed += other.completed

    @property
    def due(self) -> int:
        """Iterations the scheduler emitted: started or dropped."""
        return self.started + self.dropped


class Window(_Model):
    start_s: UnixSeconds
    stats: list[Stat]
    arrivals: list[ArrivalStat] = Field(default_factory=list)
    """Open-model iteration counts per user class (schema 1.3; empty in closed runs and older files)."""


class Legs(_Model):
    """Where the time of one stat's requests went (schema 1.2; docs/result-schema.md "Request legs").

    total = connect + wait + body: connect is DNS + TCP (+ TLS) on a new connection and 0 on a reused one (a
    websocket's upgrade, and for `/rtc` its join reply, counts as connect); wait is sending the request, the
    server's time and the first byte back; body is reading the rest. Sketches hold successful requests only.
    """

    new_connections: int = 0
    """Requests (successful or not) that opened a connection."""
    reused: int = 0
    """Requests that went over a kept-alive connection."""
    sent_bytes: int = 0
    """Request body bytes the client named (`bytes_sent`: uploads), for the network prediction."""
    wire_bytes: int = 0
    """Response body bytes as they came over the wire (compressed), for the network prediction."""
    connect: SketchField = Field(default_factory=Sketch)
    """Connect time of the successful requests that opened a connection, ms."""
    wait: SketchField = Field(default_factory=Sketch)
    body: SketchField = Field(default_factory=Sketch)
    tail: list[list[float]] = Field(default_factory=list)
    """Rows `[key, count, total_ms, connect_ms, wait_ms, body_ms]`: sums per coarse bucket of the total time
    (bucket `key` holds totals in (TAIL_GAMMA**(key-1), TAIL_GAMMA**key] ms), so the legs of the requests above
    any threshold can be read back."""


class Result(_Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    schema_minor: int = SCHEMA_MINOR
    """Fields added within the major version; a file without it is 1.0."""
    run: RunInfo
    window_s: float = Field(ge=MIN_WINDOW_S)
    windows: list[Window] = Field(default_factory=list)
    users: list[UsersSample] = Field(default_factory=list)
    cpu: list[CpuSample] = Field(default_factory=list)
    process_cpu: list[CpuSample] = Field(default_factory=list)
    """CPU % of one core per process role on the machine that ran the orchestrator (edge, primary,
    primary-postgres, locust-worker, …, and `machine` for all cores), one sample per role every few seconds
    (schema 1.2; empty in older files and when nothing was sampled)."""
    gates: GatesConfig | None = None
    """The profile's gates at run time, so `harness gate result.json` needs nothing else."""
    arrival: dict[str, Arrival] = Field(default_factory=dict)
    """The profile's open-model classes and their target rates (schema 1.3; empty in closed runs)."""
    hops: DeliveryHops | None = None
    """Delivery accounted per hop, its attribution and latency legs (schema 1.4; None in older files and runs that
    sent no message)."""


# ---- reading and writing ----


def load_result(path: str | Path) -> Result:
    return parse_result(read_text(path, "result", max_bytes=MAX_DATA_BYTES), str(path))


def parse_result(text: str, where: str = "result.json") -> Result:
    data = parse_json(text, where)
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {show_value(data)} is not a result (a JSON object with schema_version 1)")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise ConfigError(
            f"{where}: schema_version: {show_value(version)} is not supported (this harness reads {SCHEMA_VERSION})"
        )
    data.setdefault("schema_minor", 0)  # written before minor versions existed: 1.0
    try:
        return Result.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        minor = data.get("schema_minor")
        newer = (
            f"; written by schema {SCHEMA_VERSION}.{minor}, this harness reads up to {SCHEMA_VERSION}.{SCHEMA_MINOR}"
            if isinstance(minor, int) and minor > SCHEMA_MINOR
            else ""
        )
        problem = "is required" if first["type"] == "missing" else f"{show_value(first['input'])}: {first['msg']}"
        raise ConfigError(f"{where}: {loc}: {problem} ({exc.error_count()} problem(s){newer})") from None


def dump_result(result: Result, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(result.model_dump_json(indent=None) + "\n", encoding="utf-8")
    return out


# ---- the accumulator (workers and master) ----


class _LegAcc:
    """`Legs` while recording: the tail as a dict of mutable rows, so a request updates numbers in place."""

    __slots__ = ("body", "connect", "new", "received", "reused", "sent", "tail", "wait")

    def __init__(self) -> None:
        self.sent = 0
        self.received = 0
        self.new = 0
        self.reused = 0
        self.connect = Sketch()
        self.wait = Sketch()
        self.body = Sketch()
        self.tail: dict[int, list[float]] = {}

    def add(
        self, ok: bool, total_ms: float, connect_ms: float | None, wait_ms: float, body_ms: float, sent: int, wire: int
    ) -> None:
        self.sent += sent
        self.received += wire
        if connect_ms is None:
            self.reused += 1
        else:
            self.new += 1
        if not ok:
            return
        if connect_ms is not None:
            self.connect.add(connect_ms)
        self.wait.add(wait_ms)
        self.body.add(body_ms)
        k = _ceil(_log(total_ms) * _INV_LOG_TAIL) if total_ms > 1e-6 else 0
        row = self.tail.get(k)
        if row is None:
            row = self.tail[k] = [0.0, 0.0, 0.0, 0.0, 0.0]
        row[0] += 1
        row[1] += total_ms
        row[2] += connect_ms or 0.0
        row[3] += wait_ms
        row[4] += body_ms

    def merge_acc(self, other: _LegAcc) -> None:
        self.new += other.new
        self.reused += other.reused
        self.sent += other.sent
        self.received += other.received
        self.connect.merge(other.connect)
        self.wait.merge(other.wait)
        self.body.merge(other.body)
        for key, sums in other.tail.items():
            self._add_row(key, sums)

    def merge_legs(self, legs: Legs) -> None:
        self.sent += legs.sent_bytes
        self.received += legs.wire_bytes
        self.new += legs.new_connections
        self.reused += legs.reused
        self.connect.merge(legs.connect)
        self.wait.merge(legs.wait)
        self.body.merge(legs.body)
        for key, *sums in legs.tail:
            self._add_row(int(key), sums[:5])

    def _add_row(self, key: int, sums: list[float]) -> None:
        row = self.tail.setdefault(key, [0.0, 0.0, 0.0, 0.0, 0.0])
        for i, value in enumerate(sums):
            row[i] += value

    def to_legs(self) -> Legs:
        return Legs(
            sent_bytes=self.sent,
            wire_bytes=self.received,
            new_connections=self.new,
            reused=self.reused,
            connect=self.connect.copy(),
            wait=self.wait.copy(),
            body=self.body.copy(),
            tail=[[float(k), *row] for k, row in sorted(self.tail.items())],
        )


def _legs_payload(legs: _LegAcc | None) -> dict[str, Any] | None:
    return None if legs is None else legs.to_legs().model_dump()


class _Acc:
    __slots__ = ("by_class", "bytes", "count", "failures", "legs", "origins", "sketch")

    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0
        self.failures: dict[str, int] = {}
        self.origins: dict[str, int] = {}
        self.by_class: dict[str, dict[str, int]] = {}
        self.sketch = Sketch()
        self.legs: _LegAcc | None = None

    def merge(
        self,
        count: int,
        failures: dict[str, int],
        nbytes: int,
        sketch: Sketch,
        origins: dict[str, int],
        by_class: dict[str, dict[str, int]],
    ) -> None:
        self.count += count
        self.bytes += nbytes
        _add_counts(self.failures, failures)
        _add_counts(self.origins, origins)
        for user_class, regions in by_class.items():
            _add_counts(self.by_class.setdefault(user_class, {}), regions)
        self.sketch.merge(sketch)


def _add_counts(into: dict[str, int], counts: dict[str, int]) -> None:
    for k, v in counts.items():
        into[k] = into.get(k, 0) + v


_Key = tuple[int, str, str, str]  # (window index, name, request type, group)


class ResultBuilder:
    """Accumulates samples on a worker or the master; `to_payload`/`merge` carry them worker → master."""

    def __init__(self, window_s: float = 5.0, worker: str = "local") -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0, got {window_s!r}")
        self.window_s = float(window_s)
        self.worker = worker
        self.workers_seen: set[str] = set()
        self._stats: dict[_Key, _Acc] = {}
        self._users: list[UsersSample] = []
        self._cpu: list[CpuSample] = []
        self._arrivals: dict[tuple[int, str], list[float]] = {}
        """(window index, user class) → [target, started, dropped, completed] (open model)."""
        self._hop_counts: dict[int, dict[str, int]] = {}
        self._legs: dict[tuple[int, str], Sketch] = {}

    def record_hops(self, counts: dict[int, dict[str, int]], legs: dict[tuple[int, str], Sketch]) -> None:
        """Add client hop counts and leg sketches, keyed by window index (DeliveryRecorder.drain_hops)."""
        for win, hops in counts.items():
            _add_counts(self._hop_counts.setdefault(int(win), {}), hops)
        for (win, leg), sketch in legs.items():
            self._legs.setdefault((int(win), leg), Sketch()).merge(sketch)

    def record(
        self,
        name: str,
        request_type: str,
        group: str,
        response_time_ms: float,
        ok: bool,
        t_s: float,
        origin_region: str | None = None,
        failure_kind: str | None = None,
        bytes: int = 0,
        user_class: str | None = None,
        connect_ms: float | None = None,
        wait_ms: float | None = None,
        body_ms: float | None = None,
        sent_bytes: int = 0,
        wire_bytes: int = 0,
    ) -> None:
        """One request (called per request: keep it cheap). `t_s` is Unix time in seconds. With both an
        `origin_region` and a `user_class`, the region is also tallied for that class. With `wait_ms` the request's
        legs are recorded too (`connect_ms` None: a reused connection)."""
        key = (int(t_s // self.window_s), name, request_type, group)
        acc = self._stats.get(key)
        if acc is None:
            acc = self._stats[key] = _Acc()
        acc.count += 1
        acc.bytes += bytes
        if ok:
            acc.sketch.add(response_time_ms)
        else:
            kind = failure_kind or DEFAULT_FAILURE_KIND
            acc.failures[kind] = acc.failures.get(kind, 0) + 1
        if origin_region is not None:
            acc.origins[origin_region] = acc.origins.get(origin_region, 0) + 1
            if user_class:
                regions = acc.by_class.get(user_class)
                if regions is None:
                    regions = acc.by_class[user_class] = {}
                regions[origin_region] = regions.get(origin_region, 0) + 1
        if wait_ms is not None:
            legs = acc.legs
            if legs is None:
                legs = acc.legs = _LegAcc()
            legs.add(ok, response_time_ms, connect_ms, wait_ms, body_ms or 0.0, sent_bytes, wire_bytes)

    def record_arrival(
        self, t_s: float, user_class: str, *, target: float = 0.0, started: int = 0, dropped: int = 0,
        completed: int = 0,
    ) -> None:  # fmt: skip
        """Open-model iteration counts at Unix time `t_s` (the worker's scheduler calls it)."""
        self._add_arrival((int(t_s // self.window_s), user_class), target, started, dropped, completed)

    def _add_arrival(self, key: tuple[int, str], target: float, started: int, dropped: int, completed: int) -> None:
        row = self._arrivals.get(key)
        if row is None:
            row = self._arrivals[key] = [0.0, 0, 0, 0]
        row[0] += target
        row[1] += started
        row[2] += dropped
        row[3] += completed

    def record_users(self, t_s: float, users: int) -> None:
        self._users.append(UsersSample(t_s=t_s, users=users))

    def record_cpu(self, t_s: float, cpu_pct: float, worker: str | None = None) -> None:
        self._cpu.append(CpuSample(t_s=t_s, worker=worker or self.worker, cpu_pct=cpu_pct))

    @property
    def request_count(self) -> int:
        return sum(a.count for a in self._stats.values())

    def to_payload(self, reset: bool = False) -> dict[str, Any]:
        """JSON-able (and msgpack-able) dict a worker ships; `reset=True` empties the builder (incremental reports)."""
        payload = {
            "v": PAYLOAD_VERSION,
            "worker": self.worker,
            "window_s": self.window_s,
            "stats": [
                [
                    *(k[0], k[1], k[2], k[3], a.count, a.failures, a.bytes, a.sketch.to_dict(), a.origins),
                    *(a.by_class, _legs_payload(a.legs)),
                ]
                for k, a in self._stats.items()
            ],
            "cpu": [[c.t_s, c.worker, c.cpu_pct] for c in self._cpu],
            "users": [[u.t_s, u.users] for u in self._users],
            "arrivals": [[k[0], k[1], *row] for k, row in self._arrivals.items()],
        }
        if self._hop_counts or self._legs:
            payload["hops"] = {
                "counts": [[win, counts] for win, counts in self._hop_counts.items()],
                "legs": [[win, leg, sketch.to_dict()] for (win, leg), sketch in self._legs.items()],
            }
        if reset:
            self._arrivals = {}
            self._stats = {}
            self._cpu = []
            self._users = []
            self._hop_counts = {}
            self._legs = {}
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ResultBuilder:
        builder = cls(window_s=float(payload["window_s"]), worker=str(payload.get("worker", "local")))
        builder.merge(payload)
        return builder

    def merge(self, payload: dict[str, Any] | ResultBuilder) -> None:
        """Adds a worker's payload (or another builder) into this one."""
        if isinstance(payload, ResultBuilder):
            payload = payload.to_payload()
        if payload.get("v") not in _PAYLOAD_VERSIONS:
            raise ValueError(f"worker payload version {payload.get('v')!r} is not one of {_PAYLOAD_VERSIONS}")
        if float(payload["window_s"]) != self.window_s:
            raise ValueError(f"worker window_s {payload['window_s']} differs from the master's {self.window_s}")
        self.workers_seen.add(str(payload.get("worker")))
        for row in payload["stats"]:
            win, name, rtype, group, count, failures, nbytes, sketch, origins = row[:9]
            by_class = row[9] if len(row) > 9 else {}  # version 1 rows have no per-class column
            key = (int(win), name, rtype, group)
            acc = self._stats.get(key)
            if acc is None:
                acc = self._stats[key] = _Acc()
            acc.merge(count, failures, nbytes, Sketch.from_dict(sketch), origins, by_class)
            legs = row[10] if len(row) > 10 else None  # rows before version 3 have no legs column
            if legs is not None:
                if acc.legs is None:
                    acc.legs = _LegAcc()
                acc.legs.merge_legs(legs if isinstance(legs, Legs) else Legs.model_validate(legs))
        self._cpu.extend(CpuSample(t_s=t, worker=w, cpu_pct=c) for t, w, c in payload.get("cpu", []))
        self._users.extend(UsersSample(t_s=t, users=u) for t, u in payload.get("users", []))
        for win, user_class, target, started, dropped, completed in payload.get("arrivals", []):  # version 3
            self._add_arrival((int(win), str(user_class)), target, started, dropped, completed)
        hops = payload.get("hops")  # version 4
        if isinstance(hops, dict):
            self.record_hops(
                {int(win): counts for win, counts in hops.get("counts", [])},
                {(int(win), leg): Sketch.from_dict(sketch) for win, leg, sketch in hops.get("legs", [])},
            )

    def build(self, run: RunInfo, gates: GatesConfig | None = None) -> Result:
        by_window: dict[int, list[Stat]] = {}
        for (win, name, rtype, group), a in sorted(self._stats.items()):
            by_window.setdefault(win, []).append(
                Stat(
                    name=name,
                    request_type=rtype,
                    group=group,
                    count=a.count,
                    failures=dict(a.failures),
                    bytes=a.bytes,
                    sketch=a.sketch.copy(),
                    origins=dict(a.origins),
                    origins_by_class={c: dict(r) for c, r in a.by_class.items()},
                    legs=a.legs.to_legs() if a.legs is not None else None,
                )
            )
        arrivals: dict[int, list[ArrivalStat]] = {}
        for (win, user_class), (target, started, dropped, completed) in sorted(self._arrivals.items()):
            arrivals.setdefault(win, []).append(
                ArrivalStat(
                    user_class=user_class, target=target, started=int(started), dropped=int(dropped),
                    completed=int(completed),
                )
            )  # fmt: skip
        windows = [
            Window(start_s=win * self.window_s, stats=by_window.get(win, []), arrivals=arrivals.get(win, []))
            for win in sorted(by_window.keys() | arrivals.keys())
        ]
        return Result(
            run=run,
            window_s=self.window_s,
            windows=windows,
            users=sorted(self._users, key=lambda u: u.t_s),
            cpu=sorted(self._cpu, key=lambda c: (c.worker, c.t_s)),
            gates=gates,
            hops=self._build_hops(),
        )

    def _build_hops(self) -> DeliveryHops | None:
        """The clients' side of the delivery hops (the orchestrator adds the servers' and the attribution)."""
        if not self._hop_counts and not self._legs:
            return None
        legs: dict[int, dict[str, Sketch]] = {}
        for (win, leg), sketch in sorted(self._legs.items()):
            legs.setdefault(win, {})[leg] = sketch.copy()
        return DeliveryHops(
            windows=[
                HopWindow(start_s=win * self.window_s, client=dict(counts))
                for win, counts in sorted(self._hop_counts.items())
            ],
            legs=[LegWindow(start_s=win * self.window_s, legs=by_leg) for win, by_leg in sorted(legs.items())],
        )


# ---- aggregation (pure; used by gates and reports) ----


@dataclass
class Aggregate:
    """Merged figures over a selection of windows and stats."""

    count: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    sketch: Sketch = field(default_factory=Sketch)
    origins: dict[str, int] = field(default_factory=dict)
    origins_by_class: dict[str, dict[str, int]] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def failure_count(self) -> int:
        return sum(self.failures.values())

    @property
    def error_pct(self) -> float | None:
        return 100.0 * self.failure_count / self.count if self.count else None

    @property
    def rps(self) -> float | None:
        return self.count / self.duration_s if self.duration_s > 0 else None

    def add(self, stat: Stat | Aggregate) -> None:
        """Adds a stat, or another aggregate (sketches merge exactly, so the order of adding never matters)."""
        self.count += stat.count
        self.bytes += stat.bytes
        _add_counts(self.failures, stat.failures)
        _add_counts(self.origins, stat.origins)
        for user_class, regions in stat.origins_by_class.items():
            _add_counts(self.origins_by_class.setdefault(user_class, {}), regions)
        self.sketch.merge(stat.sketch)


def steady_windows(result: Result) -> tuple[list[Window], float]:
    """Windows lying wholly inside the plateau, and the plateau time they cover (empty windows count as 0 rps)."""
    ss = result.run.steady_state
    w = result.window_s
    if ss is None:
        return list(result.windows), result.run.duration_s
    first = math.ceil(ss.start_s / w - 1e-9)
    last = math.floor(ss.end_s / w + 1e-9)  # exclusive
    inside = [win for win in result.windows if first <= round(win.start_s / w) < last]
    return inside, max(0, last - first) * w


def aggregate(
    windows: Iterable[Window],
    duration_s: float = 0.0,
    *,
    names: set[str] | None = None,
    exclude_names: Iterable[str] = (),
    group: str | None = None,
) -> Aggregate:
    """Merges the stats of `windows` matching the request names / group filters."""
    excluded = set(exclude_names)
    agg = Aggregate(duration_s=duration_s)
    for win in windows:
        for stat in win.stats:
            if names is not None and stat.name not in names:
                continue
            if stat.name in excluded or (group is not None and stat.group != group):
                continue
            agg.add(stat)
    return agg


@dataclass
class Span:
    """One stretch of a run (the steady state, or the whole run), aggregated once per (group, request name).

    Gates and reports ask many questions of the same stretch (overall, per group, per request, delivery, routes);
    each is a merge of these few parts instead of another pass over every window and stat.
    """

    duration_s: float
    parts: dict[tuple[str, str], Aggregate] = field(default_factory=dict)

    @classmethod
    def of(cls, windows: Iterable[Window], duration_s: float) -> Span:
        span = cls(duration_s)
        for win in windows:
            for stat in win.stats:
                span.parts.setdefault((stat.group, stat.name), Aggregate()).add(stat)
        return span

    def select(
        self, *, names: set[str] | None = None, exclude_names: Iterable[str] = (), group: str | None = None
    ) -> Aggregate:
        """The merged figures of the parts matching the filters (`aggregate`'s filters), over this span's time."""
        excluded = set(exclude_names)
        agg = Aggregate(duration_s=self.duration_s)
        for (part_group, name), part in self.parts.items():
            if names is not None and name not in names:
                continue
            if name in excluded or (group is not None and part_group != group):
                continue
            agg.add(part)
        return agg


def groups_of(result: Result) -> list[str]:
    """Groups seen in the data or declared in the run, in a stable order."""
    seen = {s.group for w in result.windows for s in w.stats}
    return sorted(seen | set(result.run.groups))


def arrival_totals(windows: Iterable[Window]) -> dict[str, ArrivalStat]:
    """Open-model iteration counts per user class over `windows`."""
    out: dict[str, ArrivalStat] = {}
    for win in windows:
        for a in win.arrivals:
            out.setdefault(a.user_class, ArrivalStat(user_class=a.user_class)).add(a)
    return out


def process_cpu_means(result: Result) -> dict[str, float]:
    """Mean CPU % (of one core) per process role over the steady state (the whole run without one), busiest
    first; `machine` is every core together."""
    span = result.run.steady_state
    start, end = (span.start_s, span.end_s) if span else (result.run.started_s, result.run.ended_s)
    samples: dict[str, list[float]] = {}
    for s in result.process_cpu:
        if start <= s.t_s <= end:
            samples.setdefault(s.worker, []).append(s.cpu_pct)
    means = {role: sum(v) / len(v) for role, v in samples.items()}
    return dict(sorted(means.items(), key=lambda kv: -kv[1]))
