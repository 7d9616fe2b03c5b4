"""Network condition profiles (`netem/*.toml`): typed models, a loader that names every bad value, and stacking.

A profile is data with its provenance: every value sits next to `<field>_source`, which starts with a source key
from `docs/network-profiles.md` (the keys of docs/network-calibration.md §7, or a §4 tool) or the word "assumption".

    path profile ──┐
    overlay … ─────┼─► stack() ─► NetworkProfile ─► render.py ─► Toxiproxy toxics │ tc netem lines │ nftables + tbf
    overlay … ─────┘

Stacking: latency and jitter add, losses compose as independent drops (≈ add), bandwidth takes the minimum,
faults and events concatenate. Loss and bandwidth caps apply downstream (towards the user) only.
"""

from __future__ import annotations

import importlib.resources
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from harness.errors import ConfigError
from harness.model.files import parse_toml, read_text, show_value

with importlib.resources.as_file(importlib.resources.files("harness.netem")) as _shipped:
    NETEM_DIR = _shipped.resolve()
    """Where `load_profile("name")` looks for `name.toml`: the shipped profiles (package data `harness.netem`; the
    checkout's `netem/` in an editable install)."""

SOURCE_KEYS = frozenset(
    key.lower()
    for key in (
        # docs/network-calibration.md §7
        "ZHU", "ZHU-N", "ZHU-R", "TOPVPS", "CLARA", "NIPPO", "JSD", "GP358", "IPLC", "CLOUDPING", "ALI", "TE2",
        "RAMBERT", "GFWR-ESNI", "FET", "QUIC-UPB", "QUIC-PO", "GFWATCH", "GFWR-443", "HENAN", "MARS", "SINA",
        "ECNS", "KS", "CFCN", "AWSCN", "PRICE", "HDRS", "LE-EX", "LE-RESTR", "CFF-EX", "Loadero",
        # §4 tool presets without a §7 key
        "Chrome", "ATC", "comcast", "netem", "Toxiproxy",
        "assumption",
    )
)  # fmt: skip
"""Valid first words of a `*_source` string."""

GE_TOLERANCE_PERCENT = 0.5
"""How far a Gilbert–Elliott model's steady-state loss may sit from the profile's stated `loss.percent`."""

LossModel = Literal["none", "bernoulli", "gilbert-elliott"]
Distribution = Literal["normal", "pareto", "paretonormal", "uniform"]
Stream = Literal["upstream", "downstream"]
FaultKind = Literal["stall", "reset"]

_LOSS_MODELS = ("none", "bernoulli", "gilbert-elliott")
_DISTRIBUTIONS = ("normal", "pareto", "paretonormal", "uniform")
_STREAMS = ("upstream", "downstream")
_FAULT_KINDS = ("stall", "reset")


@dataclass(frozen=True)
class Sourced:
    """A number and where it comes from."""

    value: float
    source: str


@dataclass(frozen=True)
class Latency:
    one_way: Sourced = field(default_factory=lambda: Sourced(0.0, "assumption"))
    """Milliseconds added in each direction (RTT/2)."""
    jitter: Sourced = field(default_factory=lambda: Sourced(0.0, "assumption"))
    """Milliseconds of variation around `one_way` (netem jitter; Toxiproxy ± uniform)."""
    distribution: Distribution | None = None
    distribution_source: str = ""

    @property
    def one_way_ms(self) -> float:
        return self.one_way.value

    @property
    def jitter_ms(self) -> float:
        return self.jitter.value


@dataclass(frozen=True)
class GilbertElliott:
    """netem `loss gemodel p r 1-h 1-k`, all in percent: p good→bad, r bad→good, 1-h loss in bad, 1-k in good."""

    p: Sourced
    r: Sourced
    one_minus_h: Sourced
    one_minus_k: Sourced

    def steady_state_percent(self) -> float:
        p, r = self.p.value / 100, self.r.value / 100
        bad_share = p / (p + r) if p + r > 0 else 0.0
        loss = bad_share * self.one_minus_h.value / 100 + (1 - bad_share) * self.one_minus_k.value / 100
        return loss * 100


@dataclass(frozen=True)
class Loss:
    """Downstream packet loss. `percent` is the steady-state share of packets dropped."""

    model: LossModel = "none"
    model_source: str = ""
    percent: Sourced = field(default_factory=lambda: Sourced(0.0, "assumption"))
    gilbert_elliott: GilbertElliott | None = None


@dataclass(frozen=True)
class Bandwidth:
    """Rate caps in kilobits per second; None means unlimited."""

    down_kbps: Sourced | None = None
    up_kbps: Sourced | None = None


@dataclass(frozen=True)
class Fault:
    """A connection-level fault hitting a share (`toxicity`, 0–1) of connections.

    `stall`: the stream's data is discarded and the connection closes after `duration_ms` (Toxiproxy `timeout`).
    `reset`: the first chunk in the stream triggers a TCP RST after `duration_ms` (Toxiproxy `reset_peer`).
    """

    kind: FaultKind
    stream: Stream
    toxicity: Sourced
    duration: Sourced

    @property
    def duration_ms(self) -> float:
        return self.duration.value


@dataclass(frozen=True)
class Event:
    """A time-dependent behaviour no static rendering can express (e.g. GFW residual blocking); for fault drills."""

    name: str
    description: str
    source: str


@dataclass(frozen=True)
class NetworkProfile:
    name: str
    description: str = ""
    overlay: bool = False
    latency: Latency = field(default_factory=Latency)
    loss: Loss = field(default_factory=Loss)
    bandwidth: Bandwidth = field(default_factory=Bandwidth)
    faults: tuple[Fault, ...] = ()
    nat_idle_timeout: Sourced | None = None
    """Seconds after which a carrier NAT forgets an idle connection (clients must heartbeat faster)."""
    events: tuple[Event, ...] = ()
    path: str = ""


# ---------------------------------------------------------------- loading


class _Table:
    """Reads one TOML table, turning every problem into a ConfigError naming file, field, value and valid form."""

    def __init__(self, where: str, prefix: str, data: Any) -> None:
        self.where, self.prefix = where, prefix
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: {prefix.rstrip('.') or '(top level)'}: {_show(data)} is not a table")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def fail(self, key: str, value: Any, valid: str) -> ConfigError:
        return ConfigError(f"{self.where}: {self.prefix}{key}: {_show(value)} {valid}")

    def missing(self, key: str, valid: str) -> ConfigError:
        return ConfigError(f"{self.where}: {self.prefix}{key}: missing; {valid}")

    def has(self, key: str) -> bool:
        return key in self.data

    def text(self, key: str, default: str | None = None) -> str:
        self.used.add(key)
        if key not in self.data:
            if default is None:
                raise self.missing(key, "expected a string")
            return default
        value = self.data[key]
        if not isinstance(value, str):
            raise self.fail(key, value, "is not a string")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        valid = "is not one of " + ", ".join(f'"{c}"' for c in choices)
        self.used.add(key)
        if key not in self.data:
            if default is None:
                raise self.missing(key, "expected one of " + ", ".join(f'"{c}"' for c in choices))
            return default
        value = self.data[key]
        if value not in choices:
            raise self.fail(key, value, valid)
        return str(value)

    def flag(self, key: str, default: bool) -> bool:
        self.used.add(key)
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, value, "is not true or false")
        return value

    def source(self, key: str) -> str:
        skey = f"{key}_source"
        self.used.add(skey)
        if skey not in self.data:
            raise self.missing(
                skey, f'every value needs its source (e.g. {skey} = "TOPVPS medians 192–206 ms RTT" or "assumption")'
            )
        value = self.data[skey]
        first = re.split(r"[\s,:;()]+", value.strip(), maxsplit=1)[0].lower() if isinstance(value, str) else ""
        if first not in SOURCE_KEYS:
            raise self.fail(
                skey,
                value,
                'does not start with a source key from docs/network-profiles.md or "assumption" (e.g. "ZHU ~15%")',
            )
        return str(value)

    def number(self, key: str, what: str, example: str, *, low: float = 0.0, high: float = math.inf) -> Sourced:
        """A number (`what` names its kind, e.g. "a number of milliseconds") and its `<key>_source`."""
        self.used.add(key)
        if key not in self.data:
            raise self.missing(key, f"expected {what} (e.g. {example})")
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, value, f"is not {what} (e.g. {example})")
        if not (math.isfinite(value) and low <= value <= high):  # TOML has nan and inf
            bound = f"between {_num(low)} and {_num(high)}" if math.isfinite(high) else f"at least {_num(low)}"
            raise self.fail(key, value, f"is out of range: must be {bound} (e.g. {example})")
        return Sourced(float(value), self.source(key))

    def optional_number(self, key: str, what: str, example: str, **bounds: float) -> Sourced | None:
        if key not in self.data:
            self.used.add(f"{key}_source")
            return None
        return self.number(key, what, example, **bounds)

    def table(self, key: str) -> _Table | None:
        self.used.add(key)
        if key not in self.data:
            return None
        return _Table(self.where, f"{self.prefix}{key}.", self.data[key])

    def array_of_tables(self, key: str) -> list[_Table]:
        self.used.add(key)
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, value, f"is not an array of tables (write [[{key}]] sections)")
        return [_Table(self.where, f"{self.prefix}{key}[{i}].", item) for i, item in enumerate(value)]

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.fail(unknown[0], self.data[unknown[0]], f"is not a known field here ({_known(self.used)})")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    return show_value(value)


def _num(value: float) -> str:
    return f"{value:g}"


def _known(used: set[str]) -> str:
    return "known: " + ", ".join(sorted(k for k in used if not k.endswith("_source")))


def _parse_latency(t: _Table) -> Latency:
    one_way = t.number("one_way_ms", "a number of milliseconds", "105")
    jitter = (
        t.number("jitter_ms", "a number of milliseconds", "30") if t.has("jitter_ms") else Sourced(0.0, "assumption")
    )
    distribution: Distribution | None = None
    distribution_source = ""
    if t.has("distribution"):
        distribution = t.choice("distribution", _DISTRIBUTIONS)  # type: ignore[assignment]
        distribution_source = t.source("distribution")
    t.used.add("jitter_ms_source")
    t.done()
    return Latency(one_way, jitter, distribution, distribution_source)


def _parse_loss(t: _Table) -> Loss:
    model: LossModel = t.choice("model", _LOSS_MODELS)  # type: ignore[assignment]
    model_source = t.source("model")
    if model == "none":
        t.done()
        return Loss("none", model_source, Sourced(0.0, model_source))
    percent = t.number("percent", "a number of percent", "15", high=100)
    ge = None
    if model == "gilbert-elliott":
        ge = GilbertElliott(
            p=t.number("p_percent", "a number of percent", "9", high=100),
            r=t.number("r_percent", "a number of percent", "25", high=100),
            one_minus_h=t.number("one_minus_h_percent", "a number of percent", "50", high=100),
            one_minus_k=t.number("one_minus_k_percent", "a number of percent", "2", high=100),
        )
        if ge.p.value + ge.r.value <= 0:
            raise t.fail("r_percent", ge.r.value, "must be above 0 when p_percent is 0 (e.g. 25)")
        steady = ge.steady_state_percent()
        if abs(steady - percent.value) > GE_TOLERANCE_PERCENT:
            raise t.fail(
                "percent",
                t.data["percent"],
                f"does not match the Gilbert–Elliott parameters, whose steady-state loss is {steady:.2f}% "
                f"(p/(p+r)·(1-h) + r/(p+r)·(1-k); allowed difference {GE_TOLERANCE_PERCENT})",
            )
    t.done()
    return Loss(model, model_source, percent, ge)


def _parse_bandwidth(t: _Table) -> Bandwidth:
    down = t.optional_number("down_kbps", "a number of kilobits per second", "1000", low=1)
    up = t.optional_number("up_kbps", "a number of kilobits per second", "4000", low=1)
    t.done()
    return Bandwidth(down, up)


def _parse_fault(t: _Table) -> Fault:
    kind: FaultKind = t.choice("kind", _FAULT_KINDS)  # type: ignore[assignment]
    default_stream = "downstream" if kind == "stall" else "upstream"
    stream: Stream = t.choice("stream", _STREAMS, default_stream)  # type: ignore[assignment]
    toxicity = t.number("toxicity", "a share of connections (0 to 1)", "0.02", high=1)
    if kind == "stall":
        duration = t.number("duration_ms", "a number of milliseconds", "15000", low=1)
    else:
        duration = (
            t.number("duration_ms", "a number of milliseconds", "0")
            if t.has("duration_ms")
            else Sourced(0.0, "Toxiproxy reset_peer default: reset at once")
        )
        t.used.add("duration_ms_source")
    t.done()
    return Fault(kind, stream, toxicity, duration)


def _parse_event(t: _Table) -> Event:
    event = Event(t.text("name"), t.text("description"), t.source("description"))
    t.done()
    return event


def parse_profile(data: dict[str, Any], where: str, default_name: str) -> NetworkProfile:
    """Build a NetworkProfile from parsed TOML; `where` prefixes every error message (normally the file path)."""
    top = _Table(where, "", data)
    name = top.text("name", default_name)
    description = top.text("description", "")
    overlay = top.flag("overlay", False)
    latency_t, loss_t, bandwidth_t = top.table("latency"), top.table("loss"), top.table("bandwidth")
    latency = _parse_latency(latency_t) if latency_t else Latency()
    loss = _parse_loss(loss_t) if loss_t else Loss()
    bandwidth = _parse_bandwidth(bandwidth_t) if bandwidth_t else Bandwidth()
    faults = tuple(_parse_fault(f) for f in top.array_of_tables("faults"))
    nat = None
    connection_t = top.table("connection")
    if connection_t:
        nat = connection_t.optional_number("nat_idle_timeout_s", "a number of seconds", "210", low=1)
        connection_t.done()
    events = tuple(_parse_event(e) for e in top.array_of_tables("events"))
    top.done()
    return NetworkProfile(name, description, overlay, latency, loss, bandwidth, faults, nat, events, path=where)


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(NETEM_DIR.parent))
    except ValueError:
        return str(path)


def load_profile(name_or_path: str | Path) -> NetworkProfile:
    """Load `netem/<name>.toml`, or a TOML file by path. Raises ConfigError naming the file, field and value."""
    text = str(name_or_path)
    path = Path(text) if (text.endswith(".toml") or "/" in text) else NETEM_DIR / f"{text}.toml"
    where = _display_path(path)
    if not path.is_file():
        known = ", ".join(list_profiles()) or "(none)"
        raise ConfigError(f"{where}: no such network profile (known profiles: {known})")
    return parse_profile(parse_toml(read_text(path, "network profile"), where), where, path.stem)


def list_profiles() -> list[str]:
    """Names of the profiles in `netem/`, sorted."""
    return sorted(p.stem for p in NETEM_DIR.glob("*.toml"))


# ---------------------------------------------------------------- stacking


def _join(a: str, b: str) -> str:
    return a if a == b else f"{a} + {b}"


def _add(a: Sourced, b: Sourced, name_a: str, name_b: str) -> Sourced:
    if b.value == 0:
        return a
    if a.value == 0:
        return Sourced(b.value, f"{name_b}: {b.source}")
    return Sourced(a.value + b.value, f"{name_a}: {a.source} + {name_b}: {b.source}")


def _compose_percent(a: Sourced, b: Sourced, name_b: str) -> Sourced:
    """Two independent drops in series: 1 - (1-a)(1-b); about a + b at these rates."""
    if b.value == 0:
        return a
    value = 100 * (1 - (1 - a.value / 100) * (1 - b.value / 100))
    return Sourced(round(value, 4), f"{a.source} + {name_b}: {b.source}")


def _min_rate(a: Sourced | None, b: Sourced | None, name_b: str) -> Sourced | None:
    if b is None:
        return a
    if a is None or b.value < a.value:
        return Sourced(b.value, f"{name_b}: {b.source}")
    return a


def _stack_loss(base: Loss, over: Loss, base_name: str, over_name: str) -> Loss:
    if over.model == "none":
        return base
    if base.model == "none":
        return replace(over, model_source=f"{over_name}: {over.model_source}")
    if over.model == "gilbert-elliott":
        if base.model == "gilbert-elliott":
            raise ConfigError(
                f"{over_name}: loss.model: cannot stack two Gilbert–Elliott models "
                f"({base_name} and {over_name}); an overlay's loss must be bernoulli"
            )
        base, over, base_name, over_name = over, base, over_name, base_name
    percent = _compose_percent(base.percent, over.percent, over_name)
    ge = base.gilbert_elliott
    if ge is not None:
        ge = replace(
            ge,
            one_minus_h=_compose_percent(ge.one_minus_h, over.percent, over_name),
            one_minus_k=_compose_percent(ge.one_minus_k, over.percent, over_name),
        )
        percent = Sourced(round(ge.steady_state_percent(), 4), percent.source)
    return Loss(base.model, _join(base.model_source, f"{over_name}: {over.model_source}"), percent, ge)


def stack(path_profile: NetworkProfile, *overlays: NetworkProfile) -> NetworkProfile:
    """Apply overlays (in order) on a path profile: latency adds, loss composes, bandwidth takes the minimum,
    faults and events concatenate."""
    if path_profile.overlay:
        raise ConfigError(
            f"{path_profile.path or path_profile.name}: overlay: true: {path_profile.name} is an overlay and cannot "
            f"be the base of a stack (start from a path profile: {', '.join(_path_profiles())})"
        )
    result = path_profile
    for over in overlays:
        if not over.overlay:
            raise ConfigError(
                f"{over.path or over.name}: overlay: false: {over.name} is a path profile, not an overlay "
                f"(stack only files with overlay = true)"
            )
        base_name = result.name
        lat = result.latency
        distribution_source = lat.distribution_source or (
            f"{over.name}: {over.latency.distribution_source}" if over.latency.distribution else ""
        )
        latency = Latency(
            _add(lat.one_way, over.latency.one_way, base_name, over.name),
            _add(lat.jitter, over.latency.jitter, base_name, over.name),
            lat.distribution or over.latency.distribution,
            distribution_source,
        )
        bandwidth = Bandwidth(
            _min_rate(result.bandwidth.down_kbps, over.bandwidth.down_kbps, over.name),
            _min_rate(result.bandwidth.up_kbps, over.bandwidth.up_kbps, over.name),
        )
        nat = result.nat_idle_timeout
        if over.nat_idle_timeout is not None and (nat is None or over.nat_idle_timeout.value < nat.value):
            nat = Sourced(over.nat_idle_timeout.value, f"{over.name}: {over.nat_idle_timeout.source}")
        result = NetworkProfile(
            name=f"{result.name}+{over.name}",
            description=_join(result.description, over.description) if over.description else result.description,
            overlay=False,
            latency=latency,
            loss=_stack_loss(result.loss, over.loss, base_name, over.name),
            bandwidth=bandwidth,
            faults=result.faults + over.faults,
            nat_idle_timeout=nat,
            events=result.events + over.events,
            path=result.path,
        )
    return result


def _path_profiles() -> list[str]:
    names = []
    for name in list_profiles():
        try:
            if not load_profile(name).overlay:
                names.append(name)
        except ConfigError:
            continue
    return names


def load_stack(name: str, overlays: list[str] | tuple[str, ...] = ()) -> NetworkProfile:
    """`load_profile(name)` stacked with each overlay name, in order."""
    return stack(load_profile(name), *(load_profile(o) for o in overlays))
