"""Kernel shaping over a real namespace and veth pair: loss measured as TCP retransmissions, and cleanup."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.errors import NetworkShapingError
from harness.network import kernel
from harness.network.profiles import Bandwidth, NetworkProfile, list_profiles, load_profile, load_stack, parse_profile
from harness.procs import leftovers

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("ip") is None,
    reason="kernel shaping needs root with nft and ip (network namespaces, nftables)",
)

TRANSFER_BYTES = 4_000_000
"""About 2,800 full segments: enough that 5 % loss gives a retransmission rate well inside 3–9 %."""

SNDBUF_BYTES = 65_536
"""Bounds data in flight so an RTO retransmits few segments that were not lost; the test measures the link's
loss, not TCP's recovery strategy (with the default buffer, go-back-N after a timeout inflates the count)."""

_RECEIVER = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
n = 0
while True:
    d = c.recv(65536)
    if not d:
        break
    n += len(d)
print(n)
"""


def bernoulli(percent: float) -> NetworkProfile:
    data: dict[str, Any] = {
        "loss": {
            "model": "bernoulli",
            "model_source": "assumption",
            "percent": percent,
            "percent_source": "assumption",
        }
    }
    return parse_profile(data, "test", "test-loss")


def tcp_info_counts(sock: socket.socket) -> tuple[int, int]:
    """(total_retrans, segs_out) from struct tcp_info (linux/tcp.h offsets 100 and 136)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    (total_retrans,) = struct.unpack_from("I", info, 100)
    (segs_out,) = struct.unpack_from("I", info, 136)
    return total_retrans, segs_out


def bulk_downstream(ns: kernel.Namespace, nbytes: int) -> tuple[int, int, int]:
    """Send `nbytes` from a server on the host end to a client in the namespace; return (received, retrans, segs).

    Counters come from the sending socket's own TCP_INFO, so other traffic on this machine cannot disturb them.
    """
    with socket.socket() as server:
        server.bind((ns.host_addr, 0))
        server.listen(1)
        server.settimeout(10)
        port = server.getsockname()[1]
        client = subprocess.Popen(
            ns.exec_argv([sys.executable, "-c", _RECEIVER, ns.host_addr, str(port)]),
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            conn, _ = server.accept()
            with conn:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF_BYTES)
                conn.settimeout(30)
                conn.sendall(b"x" * nbytes)
                conn.shutdown(socket.SHUT_WR)
                out, _ = client.communicate(timeout=30)
                retrans, segs = tcp_info_counts(conn)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait(5)
    return int(out.strip() or 0), retrans, segs


_UDP_RECEIVER = """
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE: no receive-buffer drops
s.bind((sys.argv[1], 0))
print(s.getsockname()[1], flush=True)
s.settimeout(10)
seen = []
while True:
    try:
        data = s.recv(64)
    except socket.timeout:
        break
    if data == b"end":
        break
    seen.append(int(data))
    s.settimeout(2)
print(json.dumps(seen))
"""


def udp_downstream(ns: kernel.Namespace, count: int) -> set[int]:
    """Send `count` numbered datagrams host → namespace; return the numbers that arrived."""
    receiver = subprocess.Popen(
        ns.exec_argv([sys.executable, "-c", _UDP_RECEIVER, ns.ns_addr]), stdout=subprocess.PIPE, text=True
    )
    try:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for seq in range(count):
                sender.sendto(str(seq).encode(), (ns.ns_addr, port))
            for _ in range(200):  # the end marker can itself be dropped: send it many times
                sender.sendto(b"end", (ns.ns_addr, port))
        out, _ = receiver.communicate(timeout=30)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait(5)
    return set(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.root
@needs_root
def test_gilbert_elliott_loss_is_bursty_with_the_profile_steady_state() -> None:
    profile = load_profile("cn-telecom-peak-to-tokyo")  # GE 9% 25% 50% 2%: 14.7% steady state
    count = 20_000
    with kernel.shaped_namespace(replace(profile, bandwidth=Bandwidth())) as ns:
        arrived = udp_downstream(ns, count)
    lost = [seq not in arrived for seq in range(count)]
    loss = sum(lost) / count
    after_loss = [lost[i + 1] for i in range(count - 1) if lost[i]]
    burst = sum(after_loss) / len(after_loss)
    assert 0.11 <= loss <= 0.19, f"steady-state loss {loss:.3f}, expected about 0.147"
    # Independent (Bernoulli) loss would give P(loss | previous lost) = 0.147; this model gives about 0.35.
    assert burst >= 0.25, f"P(loss | previous lost) = {burst:.3f}: losses are not bursty"


@pytest.mark.root
@needs_root
def test_five_percent_downstream_drop_gives_three_to_nine_percent_tcp_retransmissions() -> None:
    with kernel.shaped_namespace(bernoulli(5.0)) as ns:
        received, retrans, segs = bulk_downstream(ns, TRANSFER_BYTES)
    assert received == TRANSFER_BYTES
    assert segs > 2000
    rate = retrans / segs
    # Retransmissions = drops (5 % +- 0.4 % at this size) plus spurious timeouts on a busy 2-core machine, which
    # add up to ~2 % (7.06 % seen in a CI run), so the upper bound leaves room for them and still fails on 10 %.
    assert 0.03 <= rate <= 0.09, f"retransmission rate {rate:.3%} ({retrans}/{segs}) for 5% drop"


@pytest.mark.root
@needs_root
def test_unshaped_namespace_carries_traffic_without_retransmissions() -> None:
    with kernel.shaped_namespace(None) as ns:
        received, retrans, segs = bulk_downstream(ns, 1_000_000)
    assert received == 1_000_000
    # No drop rule, so retransmissions are only spurious timeouts when the 2 cores are busy (0.9 % seen in a full
    # suite run); still far below the 3-9 % that the 5 % drop test requires.
    assert retrans <= segs * 0.02


@pytest.mark.root
@needs_root
def test_context_manager_removes_namespace_veth_and_rules() -> None:
    with kernel.shaped_namespace(load_profile("cn-telecom-peak-to-tokyo")) as ns:
        assert ns.name in kernel.list_namespaces()
        assert ns.host_ifname in kernel.list_host_links()
        assert "table inet harness_shaping" in ns.run(["nft", "list", "tables"])
        assert "rate 1Mbit" in kernel._run(["tc", "qdisc", "show", "dev", ns.host_ifname])
        assert "rate 4Mbit" in ns.run(["tc", "qdisc", "show", "dev", ns.ns_ifname])
    assert ns.name not in kernel.list_namespaces()
    assert ns.host_ifname not in kernel.list_host_links()
    assert not os.path.exists(f"/sys/class/net/{ns.host_ifname}")


@pytest.mark.root
@needs_root
def test_context_manager_cleans_up_after_an_exception() -> None:
    names: list[str] = []
    with pytest.raises(RuntimeError, match="boom"), kernel.shaped_namespace(bernoulli(1.0)) as ns:
        names.append(ns.name)
        raise RuntimeError("boom")
    assert names and names[0] not in kernel.list_namespaces()
    assert names[0] not in kernel.list_host_links()


_SHAPER = """
import json, sys, time
from harness.network import kernel
from harness.network.profiles import parse_profile
from harness.procs import leftovers
loss = {"loss": {"model": "bernoulli", "model_source": "assumption", "percent": 2.0, "percent_source": "assumption"}}
ns = kernel.create_namespace()
kernel.apply_profile(ns, parse_profile(loss, "test", "test-loss"))
scratch = leftovers.temporary_directory("harness-stack-")
print(json.dumps({"ns": ns.name, "link": ns.host_ifname, "dir": str(scratch)}), flush=True)
time.sleep(600)
"""
"""A process that shapes as a China run does (namespace, veth, nftables loss) with a stack's temporary directory,
then waits to be killed."""


class Shaper:
    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", _SHAPER], stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the shaper exited ({self.process.wait(30)}) before shaping"
        self.made = json.loads(line)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def exists(self) -> dict[str, bool]:
        in_ns = ""
        if self.made["ns"] in kernel.list_namespaces():
            in_ns = kernel._run(["ip", "netns", "exec", self.made["ns"], "nft", "list", "tables"])
        return {
            "netns": self.made["ns"] in kernel.list_namespaces(),
            "link": self.made["link"] in kernel.list_host_links(),
            "nft": f"table inet {kernel.NFT_TABLE}" in in_ns,
            "dir": os.path.isdir(self.made["dir"]),
        }


ALL = {"netns": True, "link": True, "nft": True, "dir": True}
NONE = {"netns": False, "link": False, "nft": False, "dir": False}


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A state directory of this test's own, so it reaps nothing of other runs on this machine; whatever its
    shapers left is reaped at the end."""
    folder, scratch = tmp_path / "state", tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv(leftovers.STATE_DIR_VAR, str(folder))
    monkeypatch.setenv("TMPDIR", str(scratch))
    yield folder
    kernel.reap()


@pytest.fixture
def shapers(state: Path) -> Iterator[list[Shaper]]:
    started: list[Shaper] = []
    yield started
    for shaper in started:
        shaper.kill()


def _net_clear() -> subprocess.CompletedProcess[str]:
    # Nothing listens on port 9: there is no Toxiproxy to clear, and --kernel must not need one.
    argv = [sys.executable, "-m", "harness", "net", "clear", "--kernel", "--toxiproxy", "http://127.0.0.1:9"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.root
@needs_root
def test_net_clear_removes_a_killed_runs_shaping_and_keeps_a_running_ones(shapers: list[Shaper]) -> None:
    dead, alive = Shaper(), Shaper()
    shapers += [dead, alive]
    dead.kill()
    assert dead.exists() == ALL  # SIGKILL ran no cleanup
    done = _net_clear()
    assert done.returncode == 0, done.stderr
    assert "no Toxiproxy answers at http://127.0.0.1:9: no toxics to remove" in done.stdout
    assert dead.exists() == NONE
    for removed in (f"nft {dead.made['ns']} inet {kernel.NFT_TABLE}", f"link {dead.made['link']}",
                    f"netns {dead.made['ns']}", f"dir {dead.made['dir']}"):  # fmt: skip
        assert f"{removed} (pid {dead.process.pid})" in done.stdout
    assert alive.exists() == ALL
    assert f"kept (their harness run is still going): netns {alive.made['ns']} (pid {alive.process.pid}, running)" in (
        done.stdout
    )
    alive.kill()
    again = _net_clear()
    assert again.returncode == 0 and alive.exists() == NONE, again.stdout + again.stderr


@pytest.mark.root
@needs_root
def test_a_new_shaping_session_first_removes_a_killed_runs_leftovers(shapers: list[Shaper], state: Path) -> None:
    dead = Shaper()
    shapers.append(dead)
    dead.kill()
    with kernel.shaped_namespace(bernoulli(1.0)) as ns:
        assert dead.exists() == NONE
        assert [r.owner.pid for r in leftovers.records()] == [os.getpid()]  # only this session's own record
        assert ns.name in kernel.list_namespaces()
    assert leftovers.records() == []  # the session forgot what it removed itself


@pytest.mark.root
@needs_root
def test_net_clear_leaves_namespaces_no_harness_run_recorded_alone(state: Path) -> None:
    stranger = f"{kernel.PREFIX}{os.urandom(3).hex()}"
    subprocess.run(["ip", "netns", "add", stranger], check=True, timeout=10)
    try:
        done = _net_clear()
        assert done.returncode == 0, done.stderr
        assert stranger in kernel.list_namespaces()
        assert f"left alone (recorded by no harness run in {state}): " in done.stdout and stranger in done.stdout
    finally:
        subprocess.run(["ip", "netns", "delete", stranger], check=False, timeout=10)


@pytest.mark.root
@needs_root
@pytest.mark.parametrize("name", [n for n in list_profiles() if not load_profile(n).overlay])
def test_every_path_profile_installs(name: str) -> None:
    profile = load_stack(name, ["cn-mobile-4g", "gfw-hostile"])
    with kernel.shaped_namespace(profile) as ns:
        tables = ns.run(["nft", "list", "tables"])
    assert ("harness_shaping" in tables) == (profile.loss.model != "none")


def test_not_root_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # The OS call is replaced because the suite may run as root; nothing else can stand in for "not root".
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(NetworkShapingError, match=r"needs root: run as root, or shape with Toxiproxy only"):
        kernel.check_available()


def test_missing_nft_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool == "nft" else f"/usr/sbin/{tool}")
    with pytest.raises(NetworkShapingError, match=r"needs nft on PATH: install iproute2 and nftables"):
        kernel.check_available()
