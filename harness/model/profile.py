"""Run profiles: `profiles/*.toml` validated by typed models (load shape, scenario mix, user groups, SLO gates).

Adding a profile is adding a TOML file; see docs/profiles.md. A wrong value raises `ConfigError` naming the file,
the field, the bad value and the valid form:

    profiles/load.toml: gates.p95_ms: "2s" is not a number of milliseconds (e.g. 2000)
"""

from __future__ import annotations

import importlib.resources
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from harness.errors import ConfigError
from harness.model.files import parse_toml, read_text, show_value
from harness.model.metrics import TOTALS_EXCLUDED
from harness.model.rates import RateSchedule

USER_CLASSES = ("MessagingUser", "MeetingUser", "FileTransferUser", "WebUser")
"""Locust user classes a profile can weight (locustfiles/*.py)."""

ENVIRONMENT_ATTRIBUTE = "harness_profile"
"""The attribute of a Locust `Environment` holding the run's Profile (set by the harness plugin; scenarios read it,
so neither imports the other)."""
MIN_WINDOW_S = 0.1
"""Shortest result window: below it every request would get a window of its own."""
with importlib.resources.as_file(importlib.resources.files("harness.profiles")) as _shipped:
    DEFAULT_PROFILES_DIR = _shipped.resolve()
    """Where `resolve_profile("load")` looks when `profiles/` is not in the working directory: the shipped profiles
    (package data `harness.profiles`; the checkout's `profiles/` in an editable install)."""


# ---- field types: each validator owns its message, so errors read "<value> is not <what> (e.g. <example>)" ----


def number_check(
    what: str,
    example: str,
    *,
    low: float = 0.0,
    low_inclusive: bool = True,
    high: float | None = None,
    integer: bool = False,
    off_allowed: bool = False,
) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if off_allowed and v is False:
            return None  # `gate = false` turns a default gate off
        if v is None and off_allowed:
            return None
        bound = f"{'from' if low_inclusive else 'above'} {low:g}" + (f" to {high:g}" if high is not None else "")
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise PydanticCustomError("harness", f"is not {what} (e.g. {example})")
        if isinstance(v, float) and not math.isfinite(v):  # TOML has nan and inf: say the valid range
            raise PydanticCustomError("harness", f"is not {what} {bound} (e.g. {example})")
        if integer and not float(v).is_integer():
            raise PydanticCustomError("harness", f"is not {what} (e.g. {example})")
        too_low = v < low if low_inclusive else v <= low
        if too_low or (high is not None and v > high):
            raise PydanticCustomError("harness", f"is not {what} {bound} (e.g. {example})")
        return int(v) if integer else float(v)

    return check


def _pattern(regex: str, what: str, example: str) -> Callable[[Any], Any]:
    compiled = re.compile(regex)

    def check(v: Any) -> Any:
        if not isinstance(v, str) or not compiled.fullmatch(v):
            raise PydanticCustomError("harness", f'is not {what} (e.g. "{example}")')
        return v

    return check


_off = {"off_allowed": True}
OptMs = Annotated[float | None, BeforeValidator(number_check("a number of milliseconds", "2000", low=0, **_off))]
DeltaMs = Annotated[float, BeforeValidator(number_check("a number of milliseconds", "500"))]
Seconds = Annotated[float, BeforeValidator(number_check("a number of seconds", "60", low=0, low_inclusive=False))]
WindowSeconds = Annotated[float, BeforeValidator(number_check("a number of seconds", "5", low=MIN_WINDOW_S))]
NonNegSeconds = Annotated[float, BeforeValidator(number_check("a number of seconds", "10"))]
OptSeconds = Annotated[float | None, BeforeValidator(number_check("a number of seconds", "10", **_off))]
Pct = Annotated[float, BeforeValidator(number_check("a percentage", "5", high=100))]
OptPct = Annotated[float | None, BeforeValidator(number_check("a percentage", "5", high=100, **_off))]
OptRps = Annotated[float | None, BeforeValidator(number_check("a number of requests per second", "1000", **_off))]
Users = Annotated[int, BeforeValidator(number_check("a whole number of users", "100", integer=True))]
SpawnRate = Annotated[
    float, BeforeValidator(number_check("a number of users started per second", "10", low=0, low_inclusive=False))
]
Weight = Annotated[int, BeforeValidator(number_check("a whole-number weight", "10", integer=True))]
Count = Annotated[int, BeforeValidator(number_check("a whole number", "1", integer=True))]
OptCount = Annotated[int | None, BeforeValidator(number_check("a whole number", "0", integer=True, **_off))]
OptWorkers = Annotated[int | None, BeforeValidator(number_check("a whole number of workers", "2", low=1, integer=True))]
NetworkName = Annotated[
    str, BeforeValidator(_pattern(r"[a-z0-9][a-z0-9._-]*", "a network profile name from netem/", "baseline-lan"))
]
Country = Annotated[
    str | None,
    BeforeValidator(lambda v: v if v is None else _pattern(r"[A-Z]{2}", "a two-letter country code", "CN")(v)),
]
Region = Annotated[str, BeforeValidator(_pattern(r"[a-z]{2}(-[a-z]+)+-\d", "an AWS region name", "ap-northeast-1"))]
Name = Annotated[str, BeforeValidator(_pattern(r"\S+", "a name", "china"))]
IterationRate = Annotated[float, BeforeValidator(number_check("a number of iterations per second", "100"))]
OptIterationRate = Annotated[
    float | None, BeforeValidator(number_check("a number of iterations per second", "100", **_off))
]
PoolUsers = Annotated[int, BeforeValidator(number_check("a whole number of users", "100", low=1, integer=True))]
GroupName = Annotated[
    str,
    BeforeValidator(
        _pattern(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", "a group name (letters, digits, '.', '_' and '-')", "china")
    ),
]
"""A group's name also names files in the run's folder (`profile-<group>.json`): one safe path component."""
UserClassName = Annotated[
    str, BeforeValidator(_pattern(r"[A-Za-z_][A-Za-z0-9_]*", "a Locust user class name", "MessagingUser"))
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- load shape ----


class Stage(_Strict):
    """One LoadTestShape stage: ramp to `users` at `spawn_rate`, then hold, for `duration_s` in all."""

    duration_s: Seconds
    users: Users
    spawn_rate: SpawnRate


class Load(_Strict):
    """Either `users` + `spawn_rate` + `duration_s`, or a list of `[[load.stages]]` (checked after parsing)."""

    users: Users | None = None
    spawn_rate: SpawnRate | None = None
    duration_s: Seconds | None = None
    stages: list[Stage] | None = None

    def as_stages(self) -> list[Stage]:
        if self.stages is not None:
            return list(self.stages)
        assert self.spawn_rate is not None and self.duration_s is not None
        # users may be absent in an open profile ([arrival] pools play every user): 0 closed-model users
        return [Stage(duration_s=self.duration_s, users=self.users or 0, spawn_rate=self.spawn_rate)]

    @property
    def total_duration_s(self) -> float:
        return sum(s.duration_s for s in self.as_stages())

    @property
    def peak_users(self) -> int:
        return max(s.users for s in self.as_stages())


class SteadyStateConfig(_Strict):
    """Which part of the run throughput and percentile gates look at (the plateau)."""

    exclude_ramp: bool = True
    """Exclude the ramp-up to the peak user count and every stage after the peak (ramp-down)."""
    warmup_s: NonNegSeconds = 0.0
    """Further seconds excluded after the ramp-up (connection pools, caches, JIT warming)."""
    cooldown_s: NonNegSeconds = 0.0
    """Further seconds excluded before the plateau's end (users stopping, in-flight requests)."""
    start_s: OptSeconds = None
    """Explicit plateau start in seconds from the run start; overrides the computed one."""
    end_s: OptSeconds = None
    """Explicit plateau end in seconds from the run start; overrides the computed one."""


class Scenarios(_Strict):
    """Relative weights of the Locust user classes (Locust's `weight`); 0 leaves a class out."""

    MessagingUser: Weight = 0
    MeetingUser: Weight = 0
    FileTransferUser: Weight = 0
    WebUser: Weight = 0

    def weights(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in USER_CLASSES if getattr(self, name) > 0}


class RateStage(_Strict):
    """One ramping-arrival-rate stage: a straight line from the previous stage's rate (0 before the first) to
    `rate` over `duration_s`."""

    duration_s: Seconds
    rate: IterationRate


class Arrival(_Strict):
    """Open model for one user class: iterations (task picks) start at this rate over the whole run, all workers
    together, whatever the latency; an iteration due when none of the `max_users` users is free is dropped."""

    rate: OptIterationRate = None
    """Constant iterations/s from the start of the run."""
    stages: list[RateStage] | None = None
    """Ramping iterations/s; after the last stage its rate holds until the run ends."""
    max_users: PoolUsers
    """Users (k6's VUs) of this class that run the iterations, spawned at the run's spawn rate."""

    def schedule(self) -> RateSchedule:
        if self.stages is not None:
            return RateSchedule.ramping((s.duration_s, s.rate) for s in self.stages)
        return RateSchedule.constant(self.rate or 0.0)

    @property
    def peak_rate(self) -> float:
        return self.schedule().peak


class Group(_Strict):
    """A user group: its share of users, the network conditions it runs under and the country it claims."""

    network: NetworkName
    """Name of a network profile in netem/ (without .toml)."""
    country: Country = None
    """Viewer country (ISO 3166 alpha-2) sent the way CloudFront would (`cloudfront-viewer-country`)."""
    weight: Weight = 1
    """Share of users relative to other groups."""


# ---- gates ----


class LatencyGate(_Strict):
    p95_ms: OptMs = None
    p99_ms: OptMs = None
    max_error_pct: OptPct = None


class RouteShareGate(_Strict):
    """At least `min_pct` % of `group`'s responses came from origin `region` (from the origin-region header)."""

    group: Name
    region: Region
    min_pct: Pct
    user_class: str | None = None
    """Only this Locust user class's responses (e.g. WebUser); None: every class of the group."""


class DeltaGate(_Strict):
    """p95 of `group` minus p95 of `baseline` is at most `max_p95_delta_ms`."""

    group: Name
    baseline: Name
    max_p95_delta_ms: DeltaMs


class Validity(_Strict):
    """When a run is invalid (exit 2) rather than passed or failed."""

    max_cpu_pct: Pct = 90.0
    """A generator CPU sample above this is a saturated sample."""
    max_cpu_time_pct: Pct = 10.0
    """A worker with more than this share of saturated samples makes the run invalid."""
    min_requests: Count = 1
    """Fewer requests in the steady state than this makes the run invalid."""
    require_cpu_samples: bool = True
    """No generator CPU samples at all makes the run invalid (saturation cannot be ruled out)."""


class GatesConfig(_Strict):
    """SLO gates. Defaults are the deployment guide's: > 1,000 rps, p95 < 2 s, errors < 5 %. `false` turns one off."""

    min_rps: OptRps = 1000.0
    p95_ms: OptMs = 2000.0
    p99_ms: OptMs = None
    max_error_pct: OptPct = 5.0
    delivery_p95_ms: OptMs = None
    delivery_max_loss_pct: OptPct = None
    delivery_max_duplicates: OptCount = None
    meeting_join_p95_ms: OptMs = None
    max_dropped_iterations_pct: OptPct = 1.0
    """Open model: iterations dropped for lack of a free user, at most this share of those due (steady state).
    Applies only to runs with [arrival] classes."""
    min_rate_achieved_pct: OptPct = 95.0
    """Open model: iterations started per second, at least this share of the target rate (steady state)."""
    groups: dict[str, LatencyGate] = Field(default_factory=dict)
    requests: dict[str, LatencyGate] = Field(default_factory=dict)
    route_share: list[RouteShareGate] = Field(default_factory=list)
    delta: list[DeltaGate] = Field(default_factory=list)
    steady_state_only: bool = True
    """Throughput and percentiles over the plateau only; errors, losses and route shares always over the whole run."""
    totals_exclude: list[str] = Field(default_factory=lambda: list(TOTALS_EXCLUDED))
    """Request names left out of the overall rps, p95/p99 and error rate (delivery has its own gates)."""
    validity: Validity = Field(default_factory=Validity)


# ---- the profile ----


class Profile(_Strict):
    name: Name
    description: str = ""
    target: Literal["reference", "env"] = "reference"
    """`reference`: the embedded reference stack on loopback; `env`: the deployment named by SUPABASE_URL etc."""
    workers: OptWorkers = None
    """Locust worker processes expected; None = one per CPU."""
    window_s: WindowSeconds = 5.0
    """Length of the result's time windows (sketches and counts are kept per window)."""
    load: Load
    steady_state: SteadyStateConfig = Field(default_factory=SteadyStateConfig)
    scenarios: Scenarios = Field(default_factory=Scenarios)
    """Closed-model weights; may be left out when every user class runs open ([arrival])."""
    groups: dict[GroupName, Group] = Field(default_factory=lambda: {"baseline": Group(network="baseline-lan")})
    gates: GatesConfig = Field(default_factory=GatesConfig)
    arrival: dict[UserClassName, Arrival] = Field(default_factory=dict)
    """Open-model user classes (docs/profiles.md "Open model"); the others run closed, with think time."""

    def plateau_s(self) -> tuple[float, float]:
        """(start, end) of the steady state in seconds from the run start."""
        return _plateau_s(self.load, self.steady_state, self.arrival)

    @property
    def arrival_users(self) -> int:
        """Users of the open-model pools (always running, on top of each stage's closed-model users)."""
        return sum(a.max_users for a in self.arrival.values())

    @property
    def peak_users(self) -> int:
        """Most Locust users at once: the closed-model peak plus the open-model pools."""
        return self.load.peak_users + self.arrival_users


def _plateau_s(load: Load, steady: SteadyStateConfig, arrival: dict[str, Arrival] | None = None) -> tuple[float, float]:
    stages = load.as_stages()
    pools = sum(a.max_users for a in (arrival or {}).values())
    start, end = 0.0, load.total_duration_s
    if steady.exclude_ramp:
        peak = load.peak_users
        t, prev_users, first = 0.0, 0, None
        for stage in stages:
            ramp_s = abs(stage.users + pools - prev_users) / stage.spawn_rate
            if stage.users == peak:
                if first is None:
                    first = t + min(ramp_s, stage.duration_s)
                end = t + stage.duration_s
            elif first is not None:
                break  # the first contiguous run of peak stages is the plateau; later ones are a ramp-down or a dip
            t += stage.duration_s
            prev_users = stage.users + pools
        start = first or 0.0
        for a in (arrival or {}).values():  # and every open class at its peak rate
            a_start, a_end = _peak_rate_span(a, load.total_duration_s)
            start, end = max(start, a_start), min(end, a_end)
    start += steady.warmup_s
    end -= steady.cooldown_s
    if steady.start_s is not None:
        start = steady.start_s
    if steady.end_s is not None:
        end = steady.end_s
    return start, end


def _peak_rate_span(a: Arrival, total_s: float) -> tuple[float, float]:
    """The first stretch at the class's peak rate: from reaching it to the first stage below it (or the end)."""
    if a.stages is None:
        return 0.0, total_s
    peak = a.peak_rate
    t, prev, start = 0.0, 0.0, None
    for stage in a.stages:
        if stage.rate == peak:
            if start is None:
                start = t if prev == peak else t + stage.duration_s
        elif start is not None:
            return start, t
        t += stage.duration_s
        prev = stage.rate
    return (start if start is not None else total_s), total_s


# ---- loading and messages ----


def load_profile(path: str | Path) -> Profile:
    """Reads and validates one profile file; raises ConfigError naming file, field, value and valid form."""
    return parse_profile(read_text(path, "profile"), str(path), default_name=Path(path).stem)


def parse_profile(text: str, where: str, default_name: str = "profile") -> Profile:
    """Validates TOML text as a profile; `where` names the source in messages."""
    data = parse_toml(text, where)
    data.setdefault("name", default_name)
    if "scenarios" not in data and "arrival" not in data:  # only an open profile may go without [scenarios]
        raise ConfigError(f"{where}: scenarios: is required")
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(_format_error(where, err) for err in exc.errors())) from None
    _check_consistency(profile, where)
    return profile


def resolve_profile(name_or_path: str, profiles_dir: Path | None = None) -> Path:
    """`load` → profiles/load.toml (working directory first, then the repository's); a path is returned as is."""
    if name_or_path.endswith(".toml") or "/" in name_or_path:
        return Path(name_or_path)
    dirs = [profiles_dir] if profiles_dir is not None else [Path("profiles"), DEFAULT_PROFILES_DIR]
    for d in dirs:
        candidate = d / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    available = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.toml")})
    raise ConfigError(
        f"profile {name_or_path!r} not found in {', '.join(str(d) for d in dirs)} "
        f"(available: {', '.join(available) or 'none'}; or give a path to a .toml file)"
    )


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "[key]":
            out += ("." if out else "") + str(part)
    return out


_show = show_value


def _field_names(loc: tuple[int | str, ...]) -> list[str]:
    """Valid field names of the table at `loc` (for 'unknown field' messages)."""
    model: Any = Profile
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            # dict values (gates.groups.<name>) keep the dict's value model
            continue
        model = _inner_model(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _format_error(where: str, err: Any) -> str:
    loc = tuple(err["loc"])
    field = _loc(loc) or "(top level)"
    kind = err["type"]
    value = err.get("input")
    if kind == "harness":
        return f"{where}: {field}: {_show(value)} {err['msg']}"
    if kind == "missing":
        return f"{where}: {field}: is required"
    if kind == "extra_forbidden":
        valid = _field_names(loc[:-1])
        return f"{where}: {field}: unknown field (valid: {', '.join(valid)})"
    if kind == "literal_error":
        expected = str(err["ctx"]["expected"]).replace("'", '"')
        return f"{where}: {field}: {_show(value)} is not one of {expected}"
    if kind in ("model_type", "dict_type"):
        return f"{where}: {field}: {_show(value)} is not a table (e.g. [{field}])"
    if kind == "list_type":
        return f"{where}: {field}: {_show(value)} is not a list (e.g. [[{field}]])"
    if kind in ("string_type", "bool_type"):
        example = '"text"' if kind == "string_type" else "true"
        return f"{where}: {field}: {_show(value)} is not a {kind.split('_')[0]} (e.g. {example})"
    return f"{where}: {field}: {_show(value)}: {err['msg']}"


def _check_consistency(p: Profile, where: str) -> None:
    """Rules across fields, with the same message shape as field errors."""
    load = p.load
    simple = [load.users, load.spawn_rate, load.duration_s]
    if load.stages is not None:
        if any(v is not None for v in simple):
            raise ConfigError(
                f"{where}: load: give either users, spawn_rate and duration_s, or [[load.stages]], not both"
            )
        if not load.stages:
            raise ConfigError(f"{where}: load.stages: is empty (e.g. [[load.stages]] duration_s = 60, users = 100, …)")
    elif any(v is None for v in simple[int(bool(p.arrival)) :]):  # an open profile may leave users out
        missing = [n for n, v in zip(("users", "spawn_rate", "duration_s"), simple, strict=True) if v is None]
        missing = [n for n in missing if n != "users" or not p.arrival]
        raise ConfigError(
            f"{where}: load: {', '.join(missing)} missing (e.g. users = 100, spawn_rate = 10, duration_s = 300, "
            "or a list of [[load.stages]])"
        )
    _check_arrival(p, where)
    if p.peak_users < 1:
        raise ConfigError(f"{where}: load: peak users is 0; at least one stage needs users >= 1 (e.g. users = 100)")
    if not p.scenarios.weights() and not p.arrival:
        raise ConfigError(f"{where}: scenarios: every weight is 0 (e.g. MessagingUser = 60, WebUser = 40)")
    if not p.scenarios.weights() and load.peak_users > 0:
        raise ConfigError(
            f"{where}: load: {load.peak_users} closed-model users but no [scenarios] weight to play them; "
            "weight a class in [scenarios] (e.g. WebUser = 1) or leave users out (the [arrival] pools run alone)"
        )
    groups = p.groups
    if not groups:
        raise ConfigError(f'{where}: groups: is empty (e.g. [groups.baseline] network = "baseline-lan")')
    if sum(g.weight for g in groups.values()) == 0:
        raise ConfigError(f"{where}: groups: every weight is 0 (e.g. weight = 1)")

    def known_group(field: str, name: str) -> None:
        if name not in groups:
            raise ConfigError(f"{where}: {field}: {_show(name)} is not a group of this profile ({', '.join(groups)})")

    for name in p.gates.groups:
        known_group(f"gates.groups.{name}", name)
    for i, rs in enumerate(p.gates.route_share):
        known_group(f"gates.route_share[{i}].group", rs.group)
    for i, d in enumerate(p.gates.delta):
        known_group(f"gates.delta[{i}].group", d.group)
        known_group(f"gates.delta[{i}].baseline", d.baseline)
    start, end = p.plateau_s()
    if end - start < p.window_s:
        raise ConfigError(
            f"{where}: steady_state: the plateau from {start:g} s to {end:g} s is shorter than one window "
            f"(window_s = {p.window_s:g}); lengthen the peak stage or lower warmup_s/cooldown_s"
        )


def _check_arrival(p: Profile, where: str) -> None:
    """Open-model rules: one of rate and stages, some rate above 0, and no class both open and weighted."""
    for name, a in p.arrival.items():
        field = f"arrival.{name}"
        if (a.rate is None) == (a.stages is None):
            raise ConfigError(
                f"{where}: {field}: give either rate (e.g. rate = 400) or stages "
                "(e.g. stages = [{ duration_s = 30, rate = 100 }]), not both nor neither"
            )
        if a.stages is not None and not a.stages:
            raise ConfigError(f"{where}: {field}.stages: is empty (e.g. stages = [{{ duration_s = 30, rate = 100 }}])")
        if not a.peak_rate > 0:
            raise ConfigError(f"{where}: {field}: the rate is 0 throughout; give a rate above 0 (e.g. rate = 100)")
    both = sorted(set(p.arrival) & set(p.scenarios.weights()))
    if both:
        raise ConfigError(
            f"{where}: scenarios.{both[0]}: {both[0]} runs open-model in [arrival.{both[0]}]; a class is either "
            f"weighted in [scenarios] (closed model) or in [arrival] (open model): remove its weight"
        )
