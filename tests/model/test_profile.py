"""Run profiles: the shipped files load, load shapes give the right plateau, wrong values get pinned messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.model.profile import DEFAULT_PROFILES_DIR, load_profile, parse_profile, resolve_profile

SHIPPED = sorted(p for p in DEFAULT_PROFILES_DIR.glob("*.toml") if p.stem != "drill")  # drill.toml: drill profile

MINIMAL = """
[load]
users = 100
spawn_rate = 10
duration_s = 300

[scenarios]
MessagingUser = 1

[groups.china]
network = "cn-telecom-peak-to-tokyo"
country = "CN"

[groups.baseline]
network = "baseline-lan"

[gates]
p95_ms = 2000
"""


def test_the_five_profiles_are_shipped():
    assert {p.stem for p in SHIPPED} >= {"smoke", "load", "china", "soak", "spike"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_profiles_load_and_have_a_plateau(path: Path):
    profile = load_profile(path)
    start, end = profile.plateau_s()
    assert profile.name == path.stem
    assert 0 <= start < end <= profile.load.total_duration_s
    assert profile.scenarios.weights()


def test_load_profile_carries_the_deployment_guide_gates():
    gates = load_profile(DEFAULT_PROFILES_DIR / "load.toml").gates
    assert (gates.min_rps, gates.p95_ms, gates.max_error_pct) == (1000, 2000, 5)


def test_china_profile_has_two_groups_route_share_and_delta():
    p = load_profile(DEFAULT_PROFILES_DIR / "china.toml")
    assert p.groups["china"].country == "CN"
    assert p.gates.route_share[0].region == "ap-northeast-1"
    assert p.gates.delta[0].group == "china" and p.gates.delta[0].baseline == "baseline"


def test_simple_shape_plateau_excludes_the_ramp_up():
    p = parse_profile(MINIMAL, "x.toml")
    assert p.plateau_s() == (10.0, 300.0)  # 100 users at 10/s: 10 s ramp-up


def test_stages_plateau_is_the_first_run_of_peak_stages_after_its_ramp():
    text = MINIMAL.replace(
        "users = 100\nspawn_rate = 10\nduration_s = 300\n",
        "",
    ).replace(
        "[load]\n",
        "[[load.stages]]\nduration_s = 60\nusers = 50\nspawn_rate = 10\n"
        "[[load.stages]]\nduration_s = 100\nusers = 250\nspawn_rate = 20\n"
        "[[load.stages]]\nduration_s = 30\nusers = 50\nspawn_rate = 50\n",
    )
    p = parse_profile(text, "x.toml")
    assert p.plateau_s() == (70.0, 160.0)  # 60 s + 200 more users at 20/s; ends where the ramp-down stage begins
    assert p.load.total_duration_s == 190


def test_steady_state_trims_and_overrides():
    base = parse_profile(MINIMAL + "[steady_state]\nwarmup_s = 5\ncooldown_s = 20\n", "x.toml")
    assert base.plateau_s() == (15.0, 280.0)
    explicit = parse_profile(MINIMAL + "[steady_state]\nstart_s = 30\nend_s = 90\n", "x.toml")
    assert explicit.plateau_s() == (30.0, 90.0)
    whole = parse_profile(MINIMAL + "[steady_state]\nexclude_ramp = false\n", "x.toml")
    assert whole.plateau_s() == (0.0, 300.0)


def test_false_turns_a_default_gate_off():
    p = parse_profile(MINIMAL.replace("p95_ms = 2000", "min_rps = false"), "x.toml")
    assert p.gates.min_rps is None
    assert p.gates.p95_ms == 2000  # the other defaults stay


WHERE = "profiles/load.toml"

MESSAGES = [
    ('p95_ms = "2s"', 'profiles/load.toml: gates.p95_ms: "2s" is not a number of milliseconds (e.g. 2000)'),
    ("p95_ms = -3", "profiles/load.toml: gates.p95_ms: -3 is not a number of milliseconds from 0 (e.g. 2000)"),
    ("max_error_pct = 500", "profiles/load.toml: gates.max_error_pct: 500 is not a percentage from 0 to 100 (e.g. 5)"),
    (
        'min_rps = "fast"',
        'profiles/load.toml: gates.min_rps: "fast" is not a number of requests per second (e.g. 1000)',
    ),
    (
        "p59_ms = 2000",
        "profiles/load.toml: gates.p59_ms: unknown field (valid: min_rps, p95_ms, p99_ms, max_error_pct, "
        "delivery_p95_ms, delivery_max_loss_pct, delivery_max_duplicates, meeting_join_p95_ms, "
        "max_dropped_iterations_pct, min_rate_achieved_pct, groups, requests, "
        "route_share, delta, steady_state_only, totals_exclude, validity)",
    ),
    (
        '[[gates.route_share]]\ngroup = "china"\nregion = "tokyo"\nmin_pct = 99',
        'profiles/load.toml: gates.route_share[0].region: "tokyo" is not an AWS region name (e.g. "ap-northeast-1")',
    ),
    (
        '[[gates.route_share]]\ngroup = "chna"\nregion = "ap-northeast-1"\nmin_pct = 99',
        'profiles/load.toml: gates.route_share[0].group: "chna" is not a group of this profile (china, baseline)',
    ),
    (
        '[[gates.delta]]\ngroup = "china"\nbaseline = "base"\nmax_p95_delta_ms = 300',
        'profiles/load.toml: gates.delta[0].baseline: "base" is not a group of this profile (china, baseline)',
    ),
]


@pytest.mark.parametrize(("gates_line", "message"), MESSAGES, ids=[m[0].split("\n")[-1] for m in MESSAGES])
def test_gate_messages_name_file_field_value_and_valid_form(gates_line: str, message: str):
    text = MINIMAL.replace("p95_ms = 2000", "") + gates_line + "\n"
    with pytest.raises(ConfigError) as exc:
        parse_profile(text, WHERE)
    assert str(exc.value) == message


OTHER = [
    (("users = 100", "users = 12.5"), "profiles/load.toml: load.users: 12.5 is not a whole number of users (e.g. 100)"),
    (
        ("spawn_rate = 10", "spawn_rate = 0"),
        "profiles/load.toml: load.spawn_rate: 0 is not a number of users started per second above 0 (e.g. 10)",
    ),
    (
        ("duration_s = 300\n", ""),
        "profiles/load.toml: load: duration_s missing (e.g. users = 100, spawn_rate = 10, duration_s = 300, "
        "or a list of [[load.stages]])",
    ),
    (
        ("duration_s = 300\n", "duration_s = 300\nstages = [{ duration_s = 10, users = 5, spawn_rate = 1 }]\n"),
        "profiles/load.toml: load: give either users, spawn_rate and duration_s, or [[load.stages]], not both",
    ),
    (
        ('country = "CN"', 'country = "China"'),
        'profiles/load.toml: groups.china.country: "China" is not a two-letter country code (e.g. "CN")',
    ),
    (
        ('network = "baseline-lan"', 'network = "Baseline LAN"'),
        'profiles/load.toml: groups.baseline.network: "Baseline LAN" is not a network profile name from netem/ '
        '(e.g. "baseline-lan")',
    ),
    (
        ("MessagingUser = 1", "MessageUser = 1"),
        "profiles/load.toml: scenarios.MessageUser: unknown field "
        "(valid: MessagingUser, MeetingUser, FileTransferUser, WebUser)",
    ),
    (
        ("MessagingUser = 1", "MessagingUser = 0"),
        "profiles/load.toml: scenarios: every weight is 0 (e.g. MessagingUser = 60, WebUser = 40)",
    ),
    (("[load]", 'target = "prod"\n[load]'), 'profiles/load.toml: target: "prod" is not one of "reference" or "env"'),
    (("[scenarios]\nMessagingUser = 1\n", ""), "profiles/load.toml: scenarios: is required"),
    (
        ("[gates]", "[steady_state]\nwarmup_s = 290\n[gates]"),
        "profiles/load.toml: steady_state: the plateau from 300 s to 300 s is shorter than one window (window_s = 5); "
        "lengthen the peak stage or lower warmup_s/cooldown_s",
    ),
]


@pytest.mark.parametrize(("edit", "message"), OTHER, ids=[e[0][1][:30] or e[0][0][:30] for e in OTHER])
def test_other_messages(edit: tuple[str, str], message: str):
    old, new = edit
    assert old in MINIMAL
    with pytest.raises(ConfigError) as exc:
        parse_profile(MINIMAL.replace(old, new, 1), WHERE)
    assert str(exc.value) == message


def test_invalid_toml_and_missing_file_name_the_file(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"^profiles/load\.toml: not valid TOML: "):
        parse_profile("[load\n", WHERE)
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read profile"):
        load_profile(tmp_path / "nope.toml")


def test_resolve_by_name_and_unknown_names(tmp_path: Path):
    (tmp_path / "mine.toml").write_text(MINIMAL)
    assert resolve_profile("mine", tmp_path) == tmp_path / "mine.toml"
    assert load_profile(resolve_profile("mine", tmp_path)).name == "mine"
    with pytest.raises(ConfigError, match=r"profile 'lod' not found .*\(available: mine; or give a path"):
        resolve_profile("lod", tmp_path)
    assert resolve_profile("some/where.toml") == Path("some/where.toml")
