"""China runs (`harness/run/shaping.py` + the orchestrator): the planning is pure and tested directly; the runs are real
`harness run` processes against a reference stack they start, with the embedded Toxiproxy and, as root, a network
namespace. Locust never loads into this process (gevent would patch it)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import pytest

from harness.errors import ConfigError
from harness.gates.verdict import evaluate
from harness.model.profile import load_profile, parse_profile, resolve_profile
from harness.model.result import aggregate, load_result
from harness.network import kernel
from harness.network.profiles import load_stack
from harness.procs import leftovers
from harness.run import shaping as china
from harness.run.accounts import users_needed

NETWORK = "cn-telecom-offpeak-to-tokyo"
"""A mild China path: 68 ms each way, 3 % GE loss, 4 Mbps, 0.1 % stalls (so a short run rarely hits a stall)."""
RTT_MS = 2 * 68
IS_ROOT = os.geteuid() == 0


def _profile_text(duration_s: float, web_only: bool = False) -> str:
    scenarios = "WebUser = 1\n" if web_only else "MessagingUser = 3\nWebUser = 2\n"
    return f"""
name = "china-test"
window_s = 2
[load]
users = 6
spawn_rate = 6
duration_s = {duration_s}
[steady_state]
warmup_s = 2
cooldown_s = 1
[scenarios]
{scenarios}
[groups.china]
network = "cn-telecom-peak-to-tokyo"
country = "CN"
[groups.baseline]
network = "baseline-lan"
country = "SG"
[gates]
min_rps = false
[gates.groups.china]
p95_ms = 2000
max_error_pct = 5
[[gates.route_share]]
group = "china"
region = "ap-northeast-1"
min_pct = 99
[[gates.delta]]
group = "china"
baseline = "baseline"
max_p95_delta_ms = 1200
"""


# ---- planning ----


def test_network_override_applies_to_the_cn_groups_only() -> None:
    profile = parse_profile(_profile_text(20), "p.toml")
    changed = china.with_network(profile, NETWORK)
    assert changed.groups["china"].network == NETWORK and changed.groups["baseline"].network == "baseline-lan"
    networks = china.shaped_networks(changed, ("cn-mobile-4g",))
    assert list(networks) == ["china"]  # the baseline group talks to the target directly
    assert networks["china"].name == f"{NETWORK}+cn-mobile-4g"
    assert networks["china"].latency.one_way_ms == 68 + 25


def test_network_override_without_a_cn_group_names_the_groups() -> None:
    smoke = load_profile(resolve_profile("smoke"))
    with pytest.raises(ConfigError, match=r"--network: profile smoke has no group with country = 'CN' .*baseline"):
        china.with_network(smoke, NETWORK)


def test_an_unknown_network_profile_lists_the_known_ones() -> None:
    profile = china.with_network(parse_profile(_profile_text(20), "p.toml"), "cn-nowhere")
    with pytest.raises(ConfigError, match=r"netem/cn-nowhere.toml: no such network profile .*cn-telecom-peak-to-tokyo"):
        china.shaped_networks(profile)


def test_the_china_profile_gates_the_china_group() -> None:
    gates = load_profile(resolve_profile("china")).gates
    assert gates.groups["china"].p95_ms == 2000 and gates.groups["china"].max_error_pct == 5
    assert [(r.group, r.region, r.min_pct) for r in gates.route_share] == [("china", "ap-northeast-1", 99)]
    assert [(d.group, d.baseline) for d in gates.delta] == [("china", "baseline")]


def test_workers_follow_group_weights_and_every_group_gets_one() -> None:
    profile = parse_profile(_profile_text(20), "p.toml")
    assert china.worker_split(profile, 4) == {"china": 2, "baseline": 2}
    assert china.worker_split(profile, 1) == {"china": 1, "baseline": 1}


def test_a_group_profile_holds_one_group_and_drops_the_country_claim_off_the_reference_stack() -> None:
    profile = parse_profile(_profile_text(20), "p.toml")
    assert china.group_profile(profile, "china", keep_country=True).groups["china"].country == "CN"
    remote = china.group_profile(profile, "china", keep_country=False)
    assert list(remote.groups) == ["china"] and remote.groups["china"].country is None


def test_proxy_urls_keep_the_scheme_and_replace_the_address() -> None:
    assert china.upstream_of("https://abc.supabase.co") == "abc.supabase.co:443"
    assert china.upstream_of("ws://127.0.0.1:7880") == "127.0.0.1:7880"
    assert china.via("ws://127.0.0.1:7880", "127.100.0.1:4001") == "ws://127.100.0.1:4001"


def test_the_kernel_applies_loss_only_and_rates_stay_per_connection() -> None:
    from harness.network.profiles import load_profile as load_net

    part = china.kernel_part(load_net("cn-telecom-peak-to-tokyo"))
    assert part.loss.percent.value == 15 and part.bandwidth.down_kbps is None and part.faults == ()


def test_users_are_provisioned_for_every_workers_share_plus_a_spare_block() -> None:
    assert users_needed(6, 2, 4) == 16  # 3 users per worker → one block each, plus one spare block each
    assert users_needed(400, 4, 4) == 416


# ---- runs ----


def _argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness", *args]


def _wait_for(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _median_ms(result_path: Path, group: str, names: set[str]) -> float:
    windows = load_result(result_path).windows
    value = aggregate(windows, names=names, group=group).sketch.quantile(0.5)
    assert value is not None, f"no {names} samples in group {group}"
    return value


def _run_china(tmp_path: Path, run_id: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    profile = tmp_path / "china-test.toml"
    profile.write_text(_profile_text(16), encoding="utf-8")
    done = subprocess.run(
        _argv("run", str(profile), "--network", NETWORK, "--workers", "2", "--reports-dir", str(tmp_path),
              "--run-id", run_id, *extra),
        capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    return done, tmp_path / run_id


def _check_china_result(done: subprocess.CompletedProcess[str], out: Path) -> None:
    result = load_result(out / "result.json")
    verdict = evaluate(result)
    assert done.returncode == verdict.exit_code, done.stderr[-3000:]
    assert set(result.run.groups) == {"china", "baseline"}
    assert result.run.groups["china"].country == "CN"
    china_agg = aggregate(result.windows, group="china")
    assert china_agg.count > 0 and aggregate(result.windows, group="baseline").count > 0
    served = sum(china_agg.origins.values())
    assert served > 0 and 100.0 * china_agg.origins.get("ap-northeast-1", 0) / served >= 99
    baseline_origins = aggregate(result.windows, group="baseline").origins
    assert baseline_origins.get("ap-southeast-1", 0) > 0  # the baseline group is served by Singapore
    # Behaviour, not speed: a GET on a warm connection costs at least one round trip of the shaped path.
    names = {"sign-in", "select messages", "index.html", "manifest.json"}
    added_ms = _median_ms(out / "result.json", "china", names) - _median_ms(out / "result.json", "baseline", names)
    assert added_ms > 0.7 * RTT_MS, added_ms
    network = json.loads((out / "network.json").read_text())
    applied = network["groups"]["china"]
    assert applied["profile"] == NETWORK and applied["values"]["latency"]["one_way"]["source"].startswith("TOPVPS")
    assert {t["type"] for t in applied["applied"]["toxiproxy"]} >= {"latency", "bandwidth"}
    assert NETWORK in result.run.network_profiles
    assert not (out / "credentials.json").exists()  # the users were removed, and their passwords with them
    assert "removed 16 test users" in done.stderr


@pytest.mark.slow
def test_a_china_run_shapes_the_china_group_and_routes_it_to_japan(tmp_path: Path) -> None:
    done, out = _run_china(tmp_path, "china")
    _check_china_result(done, out)
    assert "embedded Toxiproxy at http://127.0.0.1:" in done.stderr


@pytest.mark.slow
@pytest.mark.skipif(not IS_ROOT, reason="--kernel needs root (network namespaces, nftables)")
def test_a_kernel_china_run_runs_the_china_workers_in_a_namespace(tmp_path: Path) -> None:
    before = set(kernel.list_namespaces())
    done, out = _run_china(tmp_path, "kernel", "--kernel")
    _check_china_result(done, out)
    namespace = json.loads((out / "network.json").read_text())["groups"]["china"]["namespace"]
    assert namespace["host_addr"].startswith("127.100.")
    assert "drop" in json.loads((out / "network.json").read_text())["groups"]["china"]["applied"]["kernel"]["nftables"]
    assert set(kernel.list_namespaces()) == before


def test_kernel_without_root_is_a_clear_error(tmp_path: Path) -> None:
    if IS_ROOT:
        pytest.skip("the message is for non-root users; as root --kernel works")
    profile = tmp_path / "p.toml"
    profile.write_text(_profile_text(16, web_only=True), encoding="utf-8")
    done = subprocess.run(
        _argv("run", str(profile), "--kernel", "--reports-dir", str(tmp_path)),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (
        done.returncode == 2 and "kernel network shaping (namespaces, nftables loss, tc rate) needs root" in done.stderr
    )


def _toxiproxy_url(out: Path) -> str | None:
    try:
        return str(json.loads((out / "network.json").read_text())["toxiproxy"])
    except (OSError, ValueError, KeyError):
        return None


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _running(out: Path) -> bool:
    try:
        progress = json.loads((out / "progress.json").read_text())
    except (OSError, ValueError):
        return False
    return progress.get("state") == "running" and progress.get("requests", 0) > 0


@pytest.mark.slow
def test_sigint_mid_china_run_leaves_no_toxics_proxies_namespaces_users_or_children(tmp_path: Path) -> None:
    import httpx

    profile = tmp_path / "long.toml"
    profile.write_text(_profile_text(120), encoding="utf-8")
    out = tmp_path / "interrupted"
    extra = ["--kernel"] if IS_ROOT else []
    before = set(kernel.list_namespaces()) if IS_ROOT else set()
    proc = subprocess.Popen(
        _argv("run", str(profile), "--network", NETWORK, "--workers", "2", "--reports-dir", str(tmp_path),
              "--run-id", "interrupted", *extra),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert _wait_for(lambda: _running(out), 60), "the run never reported traffic"
        credentials = out / "credentials.json"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        api = _toxiproxy_url(out)
        assert api is not None
        proxies = httpx.get(f"{api}/proxies", timeout=5).json()
        assert len(proxies) == 2 and all(p["toxics"] for p in proxies.values())  # edge and LiveKit, shaped
        children = psutil.Process(proc.pid).children(recursive=True)
        if IS_ROOT:
            (ns,) = set(kernel.list_namespaces()) - before
            in_ns = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=True).stdout
            assert in_ns.split(), "no process runs inside the China namespace"
            rules = kernel._run(["ip", "netns", "exec", ns, "nft", "list", "table", "inet", kernel.NFT_TABLE])
            assert "drop" in rules
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr[-3000:]  # 128 + SIGINT, after the partial report
    assert "SIGINT: stopping" in stderr and "removed 16 test users" in stderr
    assert _wait_for(lambda: not any(_alive(c) for c in children), 10), [c.cmdline() for c in children if _alive(c)]
    assert not credentials.exists()
    with pytest.raises(httpx.HTTPError):  # the embedded Toxiproxy is gone, with its proxies and toxics
        httpx.get(f"{api}/proxies", timeout=2)
    if IS_ROOT:
        assert set(kernel.list_namespaces()) == before
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        assert not [n for n in listed.split() if n.startswith(kernel.PREFIX) and n not in before], listed
    result = load_result(out / "result.json")
    assert result.run.partial is True and aggregate(result.windows, group="china").count > 0
    error = {c.get("name"): c for c in ET.parse(out / "junit.xml").getroot().iter("testcase")}["valid.complete"]
    assert error.find("error") is not None


@pytest.mark.slow
@pytest.mark.skipif(not IS_ROOT, reason="--kernel needs root (network namespaces, nftables)")
def test_kill_9_mid_kernel_china_run_leaves_only_what_net_clear_then_removes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14 item 7: SIGKILL runs no cleanup, so the run's namespace, veth, nftables table and the reference
    stack's temporary directory stay; they were recorded, and `harness net clear --kernel` (no Toxiproxy needed)
    removes them once the run is dead."""
    state, scratch = tmp_path / "state", tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv(leftovers.STATE_DIR_VAR, str(state))  # this run's records only: other runs are not touched
    monkeypatch.setenv("TMPDIR", str(scratch))
    profile = tmp_path / "long.toml"
    profile.write_text(_profile_text(120), encoding="utf-8")
    out = tmp_path / "killed"
    with (tmp_path / "run.log").open("w") as log:
        proc = subprocess.Popen(
            _argv("run", str(profile), "--network", NETWORK, "--workers", "2", "--reports-dir", str(tmp_path),
                  "--run-id", "killed", "--kernel"),
            stdout=log, stderr=log,
        )  # fmt: skip
        try:
            assert _wait_for(lambda: (out / "network.json").exists(), 90), (tmp_path / "run.log").read_text()[-3000:]
            proc.kill()
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    (record,) = [r for r in leftovers.records() if r.owner.pid == proc.pid]
    made = dict(record.resources)
    namespace = json.loads((out / "network.json").read_text())["groups"]["china"]["namespace"]["name"]
    assert made["netns"] == namespace and made["link"] == namespace
    assert made["nft"] == f"{namespace} inet {kernel.NFT_TABLE}"
    assert Path(made["dir"]).name.startswith("harness-stack-") and Path(made["dir"]).is_dir()
    assert namespace in kernel.list_namespaces()  # left behind: nothing cleaned up

    def cleared() -> bool:
        done = subprocess.run(
            _argv("net", "clear", "--kernel", "--toxiproxy", "http://127.0.0.1:9"),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        # Until the killed run's PostgreSQL has stopped (it gets SIGTERM with its parent), its directory is kept.
        assert done.returncode == 0 or "PostgreSQL (pid" in done.stderr, done.stdout + done.stderr
        return done.returncode == 0

    assert _wait_for(cleared, 60)
    assert namespace not in kernel.list_namespaces() and namespace not in kernel.list_host_links()
    assert not Path(made["dir"]).exists()
    assert leftovers.records() == []


# ---- distributed runs: where the listeners open, which host the workers are told ----


class _Upstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # http.server calls it by this name
        body = b"upstream"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def test_the_embedded_toxiproxy_listens_where_asked_and_the_urls_name_the_advertised_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--toxiproxy-listen-host holds for the embedded Toxiproxy too (not only a real one at TOXIPROXY_URL): a
    master without TOXIPROXY_URL whose workers run elsewhere must open the China group's listeners where they can
    reach them. 127.0.0.2 stands in for 0.0.0.0 here (loopback only); 'localhost' for the advertised name."""
    monkeypatch.delenv(china.TOXIPROXY_URL_VAR, raising=False)
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{upstream.server_address[1]}"
    try:
        with contextlib.ExitStack() as stack:
            paths, _ = china.open_paths(
                stack, {"china": load_stack("baseline-lan", [])}, {"SUPABASE_URL": url}, use_kernel=False,
                out_dir=tmp_path, log=sys.stderr, listen_host="127.0.0.2", advertise_host="localhost",
            )  # fmt: skip
            (listen,) = (p["listen"] for p in paths["china"].proxies.values())
            host, port = listen.rsplit(":", 1)
            assert host == "127.0.0.2"
            assert paths["china"].urls == {"SUPABASE_URL": f"http://localhost:{port}"}
            assert httpx.get(f"http://127.0.0.2:{port}/", timeout=10).text == "upstream"  # through the proxy
    finally:
        upstream.shutdown()
        upstream.server_close()
