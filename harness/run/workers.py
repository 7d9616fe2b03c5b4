"""The Locust processes of one run: their environment, one worker set per user group in multi-group runs (each
with its own single-group profile, URLs and namespace), and the cluster's lifetime."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from harness.loadgen import env as hs
from harness.loadgen.cluster import ClusterConfig, LocustCluster, WorkerGroup
from harness.model.profile import Profile
from harness.run import shaping as china
from harness.run.options import RunOptions, profile_data
from harness.run.target import Target
from harness.scenarios import settings as scenario_env


def locust_env(
    options: RunOptions, target: Target, profile_path: Path, out_dir: Path, run_id: str, workers: int
) -> dict[str, str]:
    return {
        **target.env,
        hs.PROFILE: str(profile_path),
        hs.RUN_ID: run_id,
        hs.OUT_DIR: str(out_dir),
        hs.WORKERS_EXPECTED: str(workers),
        hs.TARGET_LABEL: target.label,
        scenario_env.CONFIRM_REMOTE: "1" if options.confirm_remote else "",
        hs.SNAPSHOT_S: f"{options.snapshot_s:g}" if options.snapshot_s else "",
    }


def group_workers(
    profile: Profile,
    workers: int,
    target: Target,
    paths: dict[str, china.GroupPath],
    out_dir: Path,
) -> tuple[WorkerGroup, ...]:
    """One worker set per user group: its own single-group profile, URLs (a Toxiproxy listener for shaped groups),
    viewer country (reference stack only) and, for a group in a namespace, `ip netns exec`."""
    split = china.worker_split(profile, workers)
    groups = []
    for name, count in split.items():
        group_path = out_dir / f"profile-{name}.json"
        data = profile_data(china.group_profile(china.named_networks(profile), name, keep_country=target.reference))
        group_path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        shaped = paths.get(name)
        urls = shaped.urls if shaped else {"SUPABASE_URL": target.url, **livekit_urls(target)}
        country = profile.groups[name].country if target.reference else None
        env = {
            hs.PROFILE: str(group_path),
            hs.HOST: urls["SUPABASE_URL"],
            **urls,
            scenario_env.VIEWER_COUNTRY: country or "",
            scenario_env.GROUP: name,
        }
        wrap = tuple(shaped.namespace.exec_argv([])) if shaped and shaped.namespace else ()
        groups.append(WorkerGroup(name, count, env, wrap))
    return tuple(groups)


def livekit_urls(target: Target) -> dict[str, str]:
    return {"LIVEKIT_URL": target.livekit_url} if target.livekit_url else {}


@contextlib.contextmanager
def running_cluster(config: ClusterConfig) -> Iterator[LocustCluster]:
    cluster = LocustCluster(config)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
