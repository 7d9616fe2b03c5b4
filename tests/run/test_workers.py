"""The Locust processes' environment: each worker set of a multi-group run knows its group and the run's settings
through the variables the workers read (scenarios/settings.py, loadgen/env.py), spelled in one place."""

from __future__ import annotations

import json
from pathlib import Path

from harness.loadgen import env as loadgen_env
from harness.model.profile import load_profile, resolve_profile
from harness.run.options import RunOptions
from harness.run.target import Target
from harness.run.workers import group_workers, locust_env
from harness.scenarios import settings as scenario_env
from harness.scenarios.settings import ScenarioSettings


def test_each_worker_group_is_told_its_group_profile_and_url(tmp_path: Path) -> None:
    profile = load_profile(resolve_profile("china"))
    target = Target("http://127.0.0.1:54320", reference=True)
    groups = group_workers(profile, 2, target, {}, tmp_path)
    assert [g.name for g in groups] == list(profile.groups)
    for group in groups:
        settings = ScenarioSettings.from_env(group.env)
        assert settings.group == group.name
        assert settings.viewer_country == profile.groups[group.name].country
        single = json.loads(Path(group.env[loadgen_env.PROFILE]).read_text(encoding="utf-8"))
        assert list(single["groups"]) == [group.name]
        assert group.env[loadgen_env.HOST] == target.url


def test_run_environment_reads_back_as_the_workers_read_it(tmp_path: Path) -> None:
    target = Target("http://127.0.0.1:54320", env={"SUPABASE_URL": "http://127.0.0.1:54320"})
    options = RunOptions(profile="smoke", confirm_remote=True)
    env = locust_env(options, target, tmp_path / "profile.json", tmp_path, "run-1", workers=3)
    settings = ScenarioSettings.from_env(env)
    assert settings.workers_expected == 3
    assert settings.confirm_remote is True
    assert env[loadgen_env.RUN_ID] == "run-1"
    assert scenario_env.WORKERS_EXPECTED == "HARNESS_WORKERS_EXPECTED"
