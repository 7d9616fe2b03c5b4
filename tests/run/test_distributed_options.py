"""A distributed master's options are checked before anything starts (exit 2, one message naming the flag and the
valid form): the worker count the groups' weights divide into, its ports, its listen address, and the Toxiproxy
host remote workers are told to use."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.cli import build_parser, main
from harness.errors import ConfigError
from harness.model import keys
from harness.model.profile import load_profile, resolve_profile
from harness.run.distributed import distributed_workers
from harness.run.options import RunOptions

build_parser()  # import every command module now, outside any test's captured stderr

TWO_GROUPS = """window_s = 1
[load]
users = 4
spawn_rate = 4
duration_s = 3
[scenarios]
WebUser = 1
[groups.baseline]
network = "baseline-lan"
weight = {baseline}
[groups.china]
network = "cn-telecom-peak-to-tokyo"
country = "CN"
weight = {china}
[gates]
min_rps = false
"""


def _two_groups(path: Path, baseline: int = 1, china: int = 1) -> Path:
    path.write_text(TWO_GROUPS.format(baseline=baseline, china=china), encoding="utf-8")
    return path


def _expect(profile: Path, workers: int) -> int:
    options = RunOptions(profile=str(profile), master=True, expect_workers=workers)
    return distributed_workers(load_profile(profile), options, multi_group=True)


def test_the_shipped_china_profile_takes_even_worker_counts_and_names_the_nearest_otherwise() -> None:
    china = resolve_profile("china")  # groups china and baseline, weight 1 each
    assert _expect(china, 2) == 2 and _expect(china, 4) == 4
    with pytest.raises(ConfigError) as five:
        _expect(china, 5)
    assert "--expect-workers 5: profile china's user groups (weights: china 1, baseline 1)" in str(five.value)
    assert "5 split that way would be china 2, baseline 2 (4 workers); pass --expect-workers 4 or 6" in str(five.value)
    with pytest.raises(ConfigError) as one:
        _expect(china, 1)
    assert str(one.value).endswith("pass --expect-workers 2")  # one worker per group at least


def test_uneven_weights_take_the_counts_their_split_adds_up_to(tmp_path: Path) -> None:
    profile = _two_groups(tmp_path / "three-to-one.toml", baseline=3, china=1)
    assert [_expect(profile, n) for n in (3, 4, 5)] == [3, 4, 5]
    with pytest.raises(ConfigError, match=r"pass --expect-workers 3$"):
        _expect(profile, 2)  # 3:1 over 2 workers rounds to 2 + 1


def free_pair() -> int:
    """A loopback port whose next port is free too (a distributed master's Locust port and its bootstrap)."""
    for _ in range(50):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port pair on 127.0.0.1")


def _master(tmp_path: Path, *extra: str) -> list[str]:
    profile = _two_groups(tmp_path / "dist.toml")
    return ["run", str(profile), "--master", "--expect-workers", "2", "--reports-dir", str(tmp_path), *extra]


@pytest.mark.parametrize(("offset", "what"), [(0, "Locust's port for the workers"), (1, "the worker bootstrap")])
def test_a_taken_master_port_is_refused_before_the_target_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], offset: int, what: str
) -> None:
    port = free_pair()
    with socket.socket() as held:  # what a second master, or any server, would hold
        held.bind(("127.0.0.1", port + offset))
        held.listen()
        code = main(_master(tmp_path, "--master-bind", "127.0.0.1", "--master-port", str(port)))
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"--master-port {port}: 127.0.0.1:{port + offset} ({what}" in err and "is already in use" in err
    assert "starting the reference stack" not in err


def test_a_master_bind_that_is_not_an_address_here_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_master(tmp_path, "--master-bind", "master.example")) == 2
    assert "--master-bind: 'master.example' is not an IP address to listen on" in capsys.readouterr().err
    # 192.0.2.1 (TEST-NET-1) is an address, but none of this machine's.
    assert main(_master(tmp_path, "--master-bind", "192.0.2.1", "--master-port", "5557")) == 2
    err = capsys.readouterr().err
    assert "--master-bind 192.0.2.1: cannot listen on 192.0.2.1:5557" in err and "starting the reference" not in err


def test_local_workers_with_master_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["smoke", "--master", "--workers", "4"]) == 2
    assert "--workers with --master: the master starts no local workers" in capsys.readouterr().err


def test_an_advertised_toxiproxy_host_outside_the_allow_list_is_refused_before_the_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Remote workers check every host they are given against HARNESS_ALLOW_HOSTS and would stop at test start;
    the master says so first, naming the flag and the fix."""
    monkeypatch.delenv("HARNESS_ALLOW_HOSTS", raising=False)
    monkeypatch.delenv("TOXIPROXY_URL", raising=False)
    env_file = tmp_path / "target.env"  # nothing listens there: the check comes before any request
    env_file.write_text(f"SUPABASE_URL=http://127.0.0.1:9\nSUPABASE_ANON_KEY={keys.ANON_KEY}\n", encoding="utf-8")
    port = free_pair()
    code = main(
        _master(tmp_path, "--env-file", str(env_file), "--master-bind", "127.0.0.1", "--master-port", str(port),
                "--toxiproxy-advertise-host", "toxiproxy")
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    assert "--toxiproxy-advertise-host: toxiproxy is not a loopback address" in err
    assert "HARNESS_ALLOW_HOSTS=toxiproxy" in err
