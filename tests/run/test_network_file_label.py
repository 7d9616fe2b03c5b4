"""`--network PATH` (a network profile file, as the Kubernetes China overlay mounts it from its ConfigMap): the
Locust processes read the run's profile.json, where a group's network must be a netem/ name, so the file is carried
as its name while the orchestrator shapes with the file itself. Before, profile.json held the path and the Locust
master refused it at start, so every such run ended invalid (found by tests/loadgen/test_k8s_emulation.py)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.loadgen.env import read_profile
from harness.model.profile import load_profile
from harness.run import shaping
from harness.run.options import profile_data

REPO = Path(__file__).resolve().parents[2]


def test_a_network_file_reaches_the_locust_processes_as_its_name(tmp_path: Path) -> None:
    net = tmp_path / "etc" / "network.toml"  # as the china overlay mounts it; the file names itself
    net.parent.mkdir()
    text = (REPO / "netem" / "cn-telecom-peak-to-tokyo.toml").read_text(encoding="utf-8")
    net.write_text(text.replace('name = "cn-telecom-peak-to-tokyo"', 'name = "My Calibrated_Path"'), "utf-8")
    profile = shaping.with_network(load_profile(REPO / "profiles" / "china.toml"), str(net))
    assert shaping.shaped_networks(profile)["china"].name  # the orchestrator shapes with the file
    written = tmp_path / "profile.json"
    written.write_text(json.dumps(profile_data(shaping.named_networks(profile))), encoding="utf-8")
    read = read_profile(written)  # what the Locust master and workers do at start
    assert read.groups["china"].network == "my-calibrated_path"
    assert read.groups["baseline"].network == "baseline-lan"
    group = shaping.group_profile(shaping.named_networks(profile), "china", keep_country=False)
    (tmp_path / "china.json").write_text(json.dumps(profile_data(group)), encoding="utf-8")
    assert read_profile(tmp_path / "china.json").groups["china"].network == "my-calibrated_path"
