"""Renderings of every profile pinned by golden files, plus the rules behind them.

Regenerate after an intended change: `UPDATE_GOLDEN=1 pytest tests/network/test_render.py`, then review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from harness.network.profiles import list_profiles, load_profile, load_stack, parse_profile
from harness.network.render import (
    netem_commands,
    nftables_script,
    render_all,
    tbf_commands,
    toxiproxy_toxics,
)

GOLDEN = Path(__file__).parent / "golden"
STACKS = {
    "cn-telecom-peak-to-tokyo+cn-mobile-4g+gfw-hostile": ("cn-telecom-peak-to-tokyo", ["cn-mobile-4g", "gfw-hostile"]),
    "cn-mobile-cmi-to-singapore+cn-mobile-4g": ("cn-mobile-cmi-to-singapore", ["cn-mobile-4g"]),
}
CASES = {**{name: (name, []) for name in list_profiles()}, **STACKS}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendering_matches_golden(case: str) -> None:
    name, overlays = CASES[case]
    profile = load_stack(name, overlays) if overlays else load_profile(name)
    actual = json.dumps(render_all(profile), indent=2, ensure_ascii=False) + "\n"
    path = GOLDEN / f"{case}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"no golden file {path}: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert actual == path.read_text(encoding="utf-8")


def test_calibration_doc_example_netem_line() -> None:
    # docs/network-calibration.md §6 gives this exact line for the evening peak.
    lines = netem_commands(load_profile("cn-telecom-peak-to-tokyo"), down_dev="eth0", up_dev="ifb0")
    assert lines[0] == (
        "tc qdisc replace dev eth0 root netem delay 105ms 30ms distribution paretonormal "
        "loss gemodel 9% 25% 50% 2% rate 1000kbit"
    )
    assert "loss" not in lines[1]  # loss is downstream only
    assert lines[1].endswith("rate 4000kbit")


def test_toxiproxy_latency_both_directions_and_bandwidth_in_kbyte_per_s() -> None:
    toxics = {t["name"]: t for t in toxiproxy_toxics(load_profile("cn-telecom-peak-to-tokyo"))}
    for stream in ("downstream", "upstream"):
        assert toxics[f"latency_{stream}"]["attributes"] == {"latency": 105, "jitter": 30}
    assert toxics["bandwidth_downstream"]["attributes"] == {"rate": 125}  # 1 Mbps = 125 KB/s
    assert toxics["bandwidth_upstream"]["attributes"] == {"rate": 500}
    stall = toxics["timeout_downstream"]
    assert (stall["type"], stall["toxicity"], stall["attributes"]) == ("timeout", 0.02, {"timeout": 15000})
    assert all(set(t) == {"name", "type", "stream", "toxicity", "attributes"} for t in toxics.values())


def test_gfw_overlay_renders_reset_peer_on_the_handshake() -> None:
    toxics = toxiproxy_toxics(load_stack("baseline-lan", ["gfw-hostile"]))
    reset = [t for t in toxics if t["type"] == "reset_peer"]
    assert reset == [
        {"name": "reset_peer_upstream", "type": "reset_peer", "stream": "upstream", "toxicity": 0.75,
         "attributes": {"timeout": 0}}
    ]  # fmt: skip


def test_repeated_toxic_types_get_unique_names() -> None:
    toxics = toxiproxy_toxics(load_stack("cn-telecom-peak-to-tokyo", ["cn-mobile-4g"]))
    names = [t["name"] for t in toxics]
    assert len(names) == len(set(names))
    assert "timeout_downstream_2" in names


def bernoulli(percent: float, down_kbps: float | None = None) -> Any:
    data: dict[str, Any] = {
        "loss": {"model": "bernoulli", "model_source": "assumption", "percent": percent,
                 "percent_source": "assumption"},
    }  # fmt: skip
    if down_kbps:
        data["bandwidth"] = {"down_kbps": down_kbps, "down_kbps_source": "assumption"}
    return parse_profile(data, "test", "t")


def test_nftables_random_drop_in_permille() -> None:
    script = nftables_script(bernoulli(5), "veth0")
    assert 'iifname "veth0" numgen random mod 1000 < 50 counter drop' in script
    assert "hook prerouting" in script


def test_nftables_gilbert_elliott_keeps_per_packet_state_like_netem() -> None:
    rules = nftables_script(load_profile("cn-telecom-peak-to-tokyo"), "veth0").splitlines()
    body = [line.strip().removeprefix('iifname "veth0" ') for line in rules if line.strip().startswith("iifname")]
    assert body == [
        "meta mark set 0x0",
        "iifname @ge_bad meta mark set 0x1",  # remember the state the packet arrived in
        "meta mark 0x1 numgen random mod 1000 < 250 delete @ge_bad { iifname }",  # r: bad → good
        "meta mark 0x0 numgen random mod 1000 < 90 add @ge_bad { iifname }",  # p: good → bad
        "meta mark 0x1 numgen random mod 1000 < 500 counter drop",  # 1-h, in the old state
        "meta mark 0x0 numgen random mod 1000 < 20 counter drop",  # 1-k
    ]


def test_no_loss_renders_no_nftables_and_no_rate_no_tbf() -> None:
    baseline = load_profile("baseline-lan")
    assert nftables_script(baseline, "veth0") == ""
    assert tbf_commands(baseline) == []


def test_tbf_rate_and_burst() -> None:
    assert tbf_commands(bernoulli(1, down_kbps=20000), down_dev="h0") == [
        "tc qdisc replace dev h0 root tbf rate 20000kbit burst 25000 latency 100ms"
    ]


def test_sub_millisecond_latency_rounds_half_up_for_toxiproxy() -> None:
    toxics = toxiproxy_toxics(load_profile("baseline-lan"))
    assert [t["attributes"] for t in toxics] == [{"latency": 1, "jitter": 0}] * 2


def test_cli_show_prints_sources_and_all_renderings(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["net", "show", "cn-telecom-peak-to-tokyo", "--overlay", "cn-mobile-4g"]) == 0
    out = capsys.readouterr().out
    assert "← cn-telecom-peak-to-tokyo: TOPVPS medians 192–206 ms RTT" in out
    assert "← cn-mobile-4g: Chrome Fast 4G 1.35 Mbps" in out
    assert '"type": "latency"' in out and "root netem delay 130ms 40ms" in out and "tbf rate 1000kbit" in out


def test_cli_show_bad_profile_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["net", "show", "nope"]) == 2
    assert "netem/nope.toml: no such network profile" in capsys.readouterr().err
