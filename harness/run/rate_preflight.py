"""Before a run: refuse a `gates.min_rps` the profile's own users cannot produce (exit 2), warn when it is tight.

    profile + each group's network RTT ─► model/rate_check.check ─► impossible, min_rps set in the profile and
                                                                    users not overridden: ConfigError (exit 2)
                                                                  ├► impossible otherwise: a warning line
                                                                  └► tight (> 85 % of the bound): a warning line

A rate the profile asks for itself is refused; the built-in default (1,000 rps) and runs shrunk with `--users` only
warn, since there the rps gate failing is expected and says why (docs/china.md, "Rate check").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from harness.errors import ConfigError
from harness.model.profile import Profile
from harness.model.rate_check import WARN_SHARE, check
from harness.network.profiles import NetworkProfile
from harness.scenarios.settings import ScenarioSettings


def check_rate(
    profile: Profile, networks: Mapping[str, NetworkProfile], log: TextIO, *, users_overridden: bool = False
) -> None:
    rtt = {group: 2 * network.latency.one_way_ms for group, network in networks.items()}
    try:
        stay_s = ScenarioSettings.from_env().meeting_stay_s
    except ConfigError:
        stay_s = ScenarioSettings().meeting_stay_s  # a bad variable is reported by the workers that read it
    result = check(profile, rtt, stay_s)
    if result.min_rps is None:
        return
    where = f"profile {profile.name}"
    explicit = "min_rps" in profile.gates.model_fields_set
    if result.impossible and (users_overridden or not explicit):
        print(f"harness: warning: {result.explain(where)}; the rps gate will fail", file=log)
        return
    if result.impossible:
        raise ConfigError(
            f"{result.explain(where)}; the rps gate cannot pass. Raise load.users to at least "
            f"{result.users_needed()}, lower gates.min_rps below {WARN_SHARE * result.max_rps:.0f}, or drive the "
            "rate with the open model ([arrival]) instead of users"
        )
    if result.tight:
        print(
            f"harness: warning: {result.explain(where)}; min_rps is above {WARN_SHARE:.0%} of that bound, reachable "
            f"only if the target answers in no time (about {result.users_needed()} users would leave headroom)",
            file=log,
        )
