"""`[arrival]` in profiles: the open-model schema, its rules and the steady state it implies."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.model.profile import parse_profile

OPEN = """
window_s = 1
[load]
duration_s = 60
spawn_rate = 10
[arrival.MessagingUser]
stages = [{ duration_s = 10, rate = 100 }, { duration_s = 30, rate = 100 }, { duration_s = 10, rate = 0 }]
max_users = 50
"""


def test_an_open_profile_needs_no_users_nor_scenarios_and_its_plateau_is_the_peak_rate() -> None:
    p = parse_profile(OPEN, "open.toml")
    a = p.arrival["MessagingUser"]
    assert (a.max_users, a.peak_rate) == (50, 100)
    assert p.peak_users == 50 and p.load.peak_users == 0
    assert p.plateau_s() == (10.0, 40.0)  # from reaching 100/s to the ramp-down
    assert p.gates.max_dropped_iterations_pct == 1 and p.gates.min_rate_achieved_pct == 95


def test_open_and_closed_classes_mix_and_the_pools_ramp_with_the_users() -> None:
    text = "[load]\nusers = 20\nspawn_rate = 10\nduration_s = 60\n[scenarios]\nWebUser = 1\n"
    p = parse_profile(text + "[arrival.MessagingUser]\nrate = 50\nmax_users = 30\n", "mixed.toml")
    assert p.peak_users == 50
    assert p.plateau_s() == (5.0, 60.0)  # 20 closed + 30 pooled users at 10/s


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[arrival.MessagingUser]\nmax_users = 3\n", "arrival.MessagingUser: give either rate"),
        ("[arrival.MessagingUser]\nrate = 0\nmax_users = 3\n", "the rate is 0 throughout"),
        ("[arrival.MessagingUser]\nrate = 5\nmax_users = 0\n", "arrival.MessagingUser.max_users: 0 is not a whole"),
        ("[arrival.MessagingUser]\nrate = 5\nstages = []\nmax_users = 3\n", "not both nor neither"),
        ('[arrival.MessagingUser]\nrate = "5/s"\nmax_users = 3\n', "is not a number of iterations per second"),
        ("[arrival.MessagingUser]\nrate = 5\nmax_users = 3\nvus = 3\n", "unknown field (valid: rate, stages"),
        ("[scenarios]\nMessagingUser = 1\n[arrival.MessagingUser]\nrate = 5\nmax_users = 3\n", "remove its weight"),
    ],
)
def test_bad_arrival_tables_name_the_field_and_the_fix(extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^open\.toml: ") as err:
        parse_profile("[load]\nduration_s = 60\nspawn_rate = 10\n" + extra, "open.toml")
    assert message in str(err.value)


def test_closed_users_without_a_weighted_class_are_refused() -> None:
    text = "[load]\nusers = 5\nduration_s = 60\nspawn_rate = 10\n[arrival.WebUser]\nrate = 5\nmax_users = 3\n"
    with pytest.raises(ConfigError, match="5 closed-model users but no \\[scenarios\\] weight"):
        parse_profile(text, "x.toml")
