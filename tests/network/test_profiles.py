"""Profile loading: the calibrated values, every validation message (pinned), and how overlays stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.network.profiles import list_profiles, load_profile, load_stack, stack

VALID = """
name = "x"
[latency]
one_way_ms = 105
one_way_ms_source = "TOPVPS medians 192–206 ms RTT"
[loss]
model = "bernoulli"
model_source = "assumption"
percent = 1
percent_source = "assumption"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "x.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    return str(info.value).removeprefix(f"{path}: ")


# ---------------------------------------------------------------- the shipped profiles


def test_every_required_profile_exists_and_loads() -> None:
    required = {
        "baseline-lan", "cn-premium-to-hk-edge", "cn-telecom-offpeak-to-tokyo", "cn-telecom-peak-to-tokyo",
        "cn-telecom-peak-to-singapore", "cn-mobile-cmi-to-singapore", "cn-mobile-4g", "gfw-hostile",
    }  # fmt: skip
    assert required <= set(list_profiles())
    overlays = {name for name in list_profiles() if load_profile(name).overlay}
    assert overlays == {"cn-mobile-4g", "gfw-hostile"}


@pytest.mark.parametrize(
    ("name", "one_way_ms", "jitter_ms", "loss_percent", "down_kbps", "up_kbps"),
    [
        # docs/network-calibration.md §6 "Proposed profiles"
        ("baseline-lan", 0.5, 0.1, 0, None, None),
        ("cn-premium-to-hk-edge", 20, 2, 0.5, 20000, 10000),
        ("cn-telecom-offpeak-to-tokyo", 68, 5, 3, 4000, 4000),
        ("cn-telecom-peak-to-tokyo", 105, 30, 15, 1000, 4000),
        ("cn-telecom-peak-to-singapore", 140, 40, 13, 1000, 4000),
        ("cn-mobile-cmi-to-singapore", 65, 10, 3, 4000, 4000),
        ("cn-mobile-4g", 25, 10, 0.2, 9000, 1500),
    ],
)
def test_profile_values_match_the_calibration_table(
    name: str, one_way_ms: float, jitter_ms: float, loss_percent: float, down_kbps: int | None, up_kbps: int | None
) -> None:
    p = load_profile(name)
    assert (p.latency.one_way_ms, p.latency.jitter_ms, p.loss.percent.value) == (one_way_ms, jitter_ms, loss_percent)
    assert (p.bandwidth.down_kbps.value if p.bandwidth.down_kbps else None) == down_kbps
    assert (p.bandwidth.up_kbps.value if p.bandwidth.up_kbps else None) == up_kbps


def test_peak_tokyo_gilbert_elliott_parameters_and_stall() -> None:
    p = load_profile("cn-telecom-peak-to-tokyo")
    ge = p.loss.gilbert_elliott
    assert ge is not None
    assert (ge.p.value, ge.r.value, ge.one_minus_h.value, ge.one_minus_k.value) == (9, 25, 50, 2)
    assert ge.steady_state_percent() == pytest.approx(14.71, abs=0.01)
    assert [(f.kind, f.toxicity.value, f.duration_ms) for f in p.faults] == [("stall", 0.02, 15000)]
    assert p.latency.one_way.source.startswith("TOPVPS")
    assert p.faults[0].duration.source.startswith("MARS")


def test_gfw_overlay_resets_three_quarters_of_handshakes() -> None:
    p = load_profile("gfw-hostile")
    assert [(f.kind, f.stream, f.toxicity.value) for f in p.faults] == [("reset", "upstream", 0.75)]
    assert {e.name for e in p.events} == {"residual-blocking", "blanket-443-reset"}


# ---------------------------------------------------------------- validation messages (pinned)


def test_valid_minimal_file_loads(tmp_path: Path) -> None:
    assert load_profile(write(tmp_path, VALID)).latency.one_way_ms == 105


def test_not_a_number(tmp_path: Path) -> None:
    text = VALID.replace("one_way_ms = 105", 'one_way_ms = "fast"')
    assert error_for(tmp_path, text) == 'latency.one_way_ms: "fast" is not a number of milliseconds (e.g. 105)'


def test_error_names_the_file_under_netem_relative_to_the_repo() -> None:
    with pytest.raises(ConfigError, match=r"^netem/nope\.toml: no such network profile \(known profiles: baseline"):
        load_profile("nope")


def test_missing_source_is_an_error(tmp_path: Path) -> None:
    text = VALID.replace('one_way_ms_source = "TOPVPS medians 192–206 ms RTT"\n', "")
    assert error_for(tmp_path, text) == (
        "latency.one_way_ms_source: missing; every value needs its source "
        '(e.g. one_way_ms_source = "TOPVPS medians 192–206 ms RTT" or "assumption")'
    )


def test_source_must_start_with_a_known_key(tmp_path: Path) -> None:
    text = VALID.replace('percent_source = "assumption"', 'percent_source = "my laptop"')
    assert error_for(tmp_path, text) == (
        'loss.percent_source: "my laptop" does not start with a source key from docs/network-profiles.md or '
        '"assumption" (e.g. "ZHU ~15%")'
    )


def test_negative_value(tmp_path: Path) -> None:
    text = VALID.replace("one_way_ms = 105", "one_way_ms = -1")
    assert error_for(tmp_path, text) == ("latency.one_way_ms: -1 is out of range: must be at least 0 (e.g. 105)")


def test_percent_above_100(tmp_path: Path) -> None:
    text = VALID.replace("percent = 1\n", "percent = 150\n")
    assert error_for(tmp_path, text) == "loss.percent: 150 is out of range: must be between 0 and 100 (e.g. 15)"


def test_unknown_loss_model(tmp_path: Path) -> None:
    text = VALID.replace('model = "bernoulli"', 'model = "random"')
    assert error_for(tmp_path, text) == 'loss.model: "random" is not one of "none", "bernoulli", "gilbert-elliott"'


def test_unknown_field(tmp_path: Path) -> None:
    text = VALID.replace("[loss]", "[loss]\nrate = 3")
    assert error_for(tmp_path, text) == "loss.rate: 3 is not a known field here (known: model, percent)"


def test_bandwidth_must_be_positive(tmp_path: Path) -> None:
    text = VALID + '[bandwidth]\ndown_kbps = 0\ndown_kbps_source = "ZHU"\n'
    assert error_for(tmp_path, text) == ("bandwidth.down_kbps: 0 is out of range: must be at least 1 (e.g. 1000)")


def test_fault_toxicity_above_one(tmp_path: Path) -> None:
    text = VALID + '[[faults]]\nkind = "stall"\ntoxicity = 2\ntoxicity_source = "assumption"\n'
    assert error_for(tmp_path, text) == ("faults[0].toxicity: 2 is out of range: must be between 0 and 1 (e.g. 0.02)")


def test_unknown_fault_kind(tmp_path: Path) -> None:
    text = VALID + '[[faults]]\nkind = "explode"\n'
    assert error_for(tmp_path, text) == 'faults[0].kind: "explode" is not one of "stall", "reset"'


def test_gilbert_elliott_must_match_stated_loss(tmp_path: Path) -> None:
    ge = "".join(
        f'{k} = {v}\n{k}_source = "assumption"\n'
        for k, v in (("p_percent", 9), ("r_percent", 25), ("one_minus_h_percent", 50), ("one_minus_k_percent", 2))
    )
    text = VALID.replace('model = "bernoulli"', 'model = "gilbert-elliott"').replace("percent = 1\n", "percent = 5\n")
    text = text.replace('percent_source = "assumption"\n', 'percent_source = "assumption"\n' + ge)
    assert error_for(tmp_path, text) == (
        "loss.percent: 5 does not match the Gilbert–Elliott parameters, whose steady-state loss is 14.71% "
        "(p/(p+r)·(1-h) + r/(p+r)·(1-k); allowed difference 0.5)"
    )


def test_invalid_toml(tmp_path: Path) -> None:
    assert error_for(tmp_path, "name = ").startswith("not valid TOML: ")


# ---------------------------------------------------------------- stacking


def test_overlays_add_latency_compose_loss_min_bandwidth_and_concatenate_faults() -> None:
    base, mobile, gfw = (load_profile(n) for n in ("cn-telecom-peak-to-tokyo", "cn-mobile-4g", "gfw-hostile"))
    s = stack(base, mobile, gfw)
    assert s.name == "cn-telecom-peak-to-tokyo+cn-mobile-4g+gfw-hostile"
    assert (s.latency.one_way_ms, s.latency.jitter_ms) == (130, 40)
    assert s.bandwidth.down_kbps is not None and s.bandwidth.down_kbps.value == 1000  # path's cap is lower
    assert s.bandwidth.up_kbps is not None and s.bandwidth.up_kbps.value == 1500  # overlay's cap is lower
    assert s.bandwidth.up_kbps.source.startswith("cn-mobile-4g: Chrome")
    assert [f.kind for f in s.faults] == ["stall", "stall", "reset"]
    ge = s.loss.gilbert_elliott
    assert ge is not None  # the 4G overlay's random loss rides on both GE states
    assert ge.one_minus_k.value == pytest.approx(100 * (1 - 0.98 * 0.998))
    assert s.loss.percent.value == pytest.approx(14.71 + 0.2, abs=0.05)
    assert s.nat_idle_timeout is not None and s.nat_idle_timeout.value == 210
    assert "cn-mobile-4g: Loadero" in s.latency.one_way.source


def test_bernoulli_losses_compose_as_independent_drops() -> None:
    s = load_stack("cn-premium-to-hk-edge", ["cn-mobile-4g"])
    assert s.loss.model == "bernoulli"
    assert s.loss.percent.value == pytest.approx(100 * (1 - 0.995 * 0.998))


def test_overlay_cannot_be_a_base() -> None:
    with pytest.raises(ConfigError, match=r"^netem/cn-mobile-4g\.toml: overlay: true: cn-mobile-4g is an overlay"):
        load_stack("cn-mobile-4g", ["gfw-hostile"])


def test_path_profile_cannot_be_an_overlay() -> None:
    with pytest.raises(ConfigError, match=r"cn-telecom-peak-to-tokyo is a path profile, not an overlay"):
        load_stack("baseline-lan", ["cn-telecom-peak-to-tokyo"])
