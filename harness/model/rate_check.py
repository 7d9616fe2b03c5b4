"""The most requests a second a closed-model profile can produce, per group, before the run (pure; no I/O).

A closed-model user runs one task, waits its think time, and runs the next. Over a long run its rate is at most

    requests per iteration / (mean think time + fixed stay + round trips per iteration × RTT)

with the server's own time taken as zero, so this is an upper bound: a `gates.min_rps` above the sum over groups
can never pass, whatever the target does (the 171-rps China run against `rps > 300` was that case).

    profile: users, [scenarios] weights, [groups] weights ──┐
    ITERATIONS: think time, requests and round trips per    ├─► max_rps per group ─► compare with gates.min_rps
        iteration of each user class (locustfiles/*.py)     │
    each group's network RTT ───────────────────────────────┘

`ITERATIONS` mirrors the locustfiles' `wait_time = between(a, b)` and their tasks (tests/gevent check the think
times against the classes). Setup requests (sign-in, subscriptions, the first web visit) happen once per user
and are left out, which keeps the bound an upper one over a long run only by a little.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.model.profile import Profile

WARN_SHARE = 0.85
"""A min_rps above this share of the bound is reachable only if every request took no server time: warn."""


@dataclass(frozen=True)
class Iteration:
    """One task of a user class, averaged over its task weights."""

    think_min_s: float
    think_max_s: float
    requests: float
    """Requests (events counted in the run's totals) per iteration."""
    round_trips: float
    """Network round trips the iteration waits for in sequence (at least one per request, outside any stay)."""
    stay_s: float = 0.0
    """Time the iteration spends waiting by design (a meeting's stay)."""

    @property
    def think_mean_s(self) -> float:
        return (self.think_min_s + self.think_max_s) / 2

    def max_rps(self, rtt_ms: float, stay_s: float | None = None) -> float:
        """Requests per second one user of this class can make at most."""
        stay = self.stay_s if stay_s is None else stay_s
        return self.requests / (self.think_mean_s + stay + self.round_trips * rtt_ms / 1000)


MEETING_STAY_S = 20.0
"""HARNESS_MEETING_STAY_S's default (harness/scenarios/settings.py)."""
MEETING_PING_INTERVAL_S = 2.0

ITERATIONS: Mapping[str, Iteration] = {
    # send 4 / history 2 / typing 1: one request each
    "MessagingUser": Iteration(1.0, 3.0, requests=1.0, round_trips=1.0),
    # return visit 9 (1 request) / first visit 1 (index, bootstrap, manifest, 2 assets: 5 requests)
    "WebUser": Iteration(2.0, 6.0, requests=0.9 * 1 + 0.1 * 5, round_trips=0.9 * 1 + 0.1 * 5),
    # upload 3 / download 3 (1 request) / signed download 1 (sign + fetch: 2)
    "FileTransferUser": Iteration(1.0, 4.0, requests=8 / 7, round_trips=8 / 7),
    # join (upgrade + join reply: 2 round trips), a ping every 2 s of the stay, leave
    "MeetingUser": Iteration(
        2.0,
        5.0,
        requests=2 + MEETING_STAY_S // MEETING_PING_INTERVAL_S - 1,
        round_trips=3.0,
        stay_s=MEETING_STAY_S,
    ),
}


@dataclass(frozen=True)
class GroupRate:
    group: str
    users: float
    rtt_ms: float
    max_rps: float

    @property
    def per_user_rps(self) -> float:
        return self.max_rps / self.users if self.users else 0.0


@dataclass(frozen=True)
class RateCheck:
    min_rps: float | None
    groups: list[GroupRate]

    @property
    def max_rps(self) -> float:
        return sum(g.max_rps for g in self.groups)

    @property
    def impossible(self) -> bool:
        return self.min_rps is not None and self.min_rps >= self.max_rps

    @property
    def tight(self) -> bool:
        return self.min_rps is not None and not self.impossible and self.min_rps > WARN_SHARE * self.max_rps

    def users_needed(self) -> int:
        """Peak users at which the bound reaches min_rps / WARN_SHARE (the same mix and groups)."""
        if self.min_rps is None or self.max_rps <= 0:
            return 0
        users = sum(g.users for g in self.groups)
        return int(users * self.min_rps / (WARN_SHARE * self.max_rps)) + 1

    def explain(self, where: str) -> str:
        parts = ", ".join(
            f"{g.group} {g.users:g} users × {g.per_user_rps:.2f} rps at RTT {g.rtt_ms:g} ms = {g.max_rps:.0f} rps"
            for g in self.groups
        )
        return (
            f"{where}: gates.min_rps = {self.min_rps:g} but the closed model's users can make at most "
            f"{self.max_rps:.0f} requests/s ({parts}; think times and round trips from harness/model/rate_check.py, "
            "server time taken as 0)"
        )


def check(profile: Profile, rtt_ms: Mapping[str, float], meeting_stay_s: float = MEETING_STAY_S) -> RateCheck:
    """The upper bound per group at the profile's peak users (`rtt_ms`: group → its network's round trip). No bound
    (min_rps None) for an open-model profile (`[arrival]`): its rate is planned, and gated by
    iterations[<class>].rate."""
    if profile.arrival:
        return RateCheck(None, [])
    weights = profile.scenarios.weights()
    total_weight = sum(weights.values())
    per_user = {
        g: sum(w / total_weight * ITERATIONS[c].max_rps(rtt_ms.get(g, 0.0), _stay(c, meeting_stay_s)) for c, w in
               weights.items() if c in ITERATIONS)
        for g in profile.groups
    }  # fmt: skip
    group_weights = {name: max(g.weight, 0) for name, g in profile.groups.items()}
    total_groups = sum(group_weights.values()) or 1
    peak = profile.load.peak_users
    groups = [
        GroupRate(g, peak * group_weights[g] / total_groups, rtt_ms.get(g, 0.0), peak * group_weights[g] /
                  total_groups * per_user[g])
        for g in profile.groups
    ]  # fmt: skip
    return RateCheck(profile.gates.min_rps, groups)


def _stay(user_class: str, meeting_stay_s: float) -> float | None:
    return meeting_stay_s if user_class == "MeetingUser" else None
