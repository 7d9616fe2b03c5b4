"""Planned switchover (POST /_admin/switchover) between two real region processes on real PostgreSQL clusters:
writers keep inserting through both regions while the primary hands its role to its standby, and every write
acknowledged with a 2xx is on the new primary afterwards. One pair serves the whole module: each test finds out
which region is the primary now, so they hold in any order.

    Singapore (primary config, no --primary-url) ◄──switchover──► Japan (replica config, forwards writes)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.errors import TargetUnreachable
from harness.model import keys
from harness.procs.piece import PieceProcess
from harness.procs.serving import background
from harness.refstack.region.app import build_app
from harness.refstack.region.config import RegionConfig
from harness.refstack.region.following import FILE as FOLLOWING_FILE
from harness.refstack.region.forwarding import FORWARDED_HEADER
from harness.refstack.region.replication import switchover as switchover_module
from tests.refstack.region.conftest import SERVICE_HEADERS as SERVICE
from tests.refstack.region.conftest import run_sql, wait_until

REGION_FACTORY = "harness.refstack.region.app:build_app_from_options"
SWITCH_TIMEOUT_S = 120.0
"""The HTTP timeout of a switchover call (stop, promote, pg_rewind and start take seconds on a busy machine)."""
WRITER_LIMIT_S = 90.0
WRITER_MAX_ROWS = 20_000
ROWS_BEFORE = 20
"""Acknowledged writes each writer makes before the switchover starts, and again after it ended."""


@dataclass
class Region:
    name: str
    options: dict[str, Any]
    log_dir: Path
    process: PieceProcess | None = None
    port: int = 0
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        log_path = self.log_dir / f"{self.name}-{self.starts}.log"
        self.process = PieceProcess(self.name, REGION_FACTORY, log_path, options=self.options, port=self.port)
        self.port = self.process.port

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def status(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/_replication/status", timeout=10)
        assert response.status_code == 200, response.text
        return dict(response.json())


@dataclass
class Pair:
    singapore: Region
    japan: Region

    def roles(self) -> tuple[Region, Region]:
        """(primary, standby) as their PostgreSQL says now."""
        if self.singapore.status()["role"] == "primary":
            return self.singapore, self.japan
        return self.japan, self.singapore


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("switchover")
    common = {"bcrypt_cost": 4}
    singapore = Region("singapore", {**common, "region": "ap-southeast-1", "data_dir": str(root / "sg")}, root)
    singapore.start()
    japan_options = {**common, "region": "ap-northeast-1", "role": "replica", "primary_url": singapore.url,
                     "forward_writes": True, "data_dir": str(root / "jp")}  # fmt: skip
    japan = Region("japan", japan_options, root)
    try:
        japan.start()
        yield Pair(singapore, japan)
    finally:
        japan.stop()
        singapore.stop()


def switchover(on: Region, to: str, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
    return httpx.post(f"{on.url}/_admin/switchover", headers=headers or SERVICE, json={"to": to, **body},
                      timeout=SWITCH_TIMEOUT_S)  # fmt: skip


def insert(region: Region, title: str) -> httpx.Response:
    headers = {**SERVICE, "Prefer": "return=minimal"}
    return httpx.post(f"{region.url}/rest/v1/conversations", headers=headers, json={"title": title}, timeout=70)


def titles_like(region: Region, prefix: str) -> set[str]:
    rows = run_sql(region.url, "select title from public.conversations where title like $1", f"{prefix}%")
    return {row["title"] for row in rows}


@dataclass
class Writer:
    """Inserts `<prefix>-<n>` through one region, one at a time, and keeps what each attempt got."""

    region: Region
    prefix: str
    acknowledged: list[tuple[str, float, float]] = field(default_factory=list)
    """(title, sent at, answered at) of every 2xx."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def run(self) -> None:
        deadline = time.monotonic() + WRITER_LIMIT_S
        headers = {**SERVICE, "Prefer": "return=minimal"}
        with httpx.Client(timeout=70) as client:
            for n in range(WRITER_MAX_ROWS):
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                title = f"{self.prefix}-{n:05d}"
                sent = time.monotonic()
                try:
                    response = client.post(f"{self.region.url}/rest/v1/conversations", headers=headers,
                                           json={"title": title})  # fmt: skip
                except httpx.HTTPError as exc:
                    self.failed.append((title, repr(exc)))
                    continue
                if 200 <= response.status_code < 300:
                    self.acknowledged.append((title, sent, time.monotonic()))
                else:
                    self.failed.append((title, f"{response.status_code} {response.text[:200]}"))

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name=f"writer-{self.prefix}", daemon=True)
        self.thread.start()

    def join(self) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join(WRITER_LIMIT_S + 80)
        assert not self.thread.is_alive(), "a writer did not finish"

    def acknowledged_since(self, moment: float) -> int:
        return sum(1 for _, sent, _ in self.acknowledged if sent >= moment)


def _switch_under_writes(pair: Pair, run: str) -> None:
    """Switch over from whichever region is the primary, with a writer on each region throughout; then check that
    nothing acknowledged was lost and both regions take writes."""
    old, new = pair.roles()
    writers = [Writer(old, f"{run}-via-old"), Writer(new, f"{run}-via-new")]
    for writer in writers:
        writer.start()
    try:
        wait_until(lambda: all(len(w.acknowledged) >= ROWS_BEFORE for w in writers), timeout_s=30)
        started = time.monotonic()
        switched = switchover(old, new.url)
        ended = time.monotonic()
        assert switched.status_code == 200, switched.text
        body = switched.json()
        assert body["role"] == "replica" and body["primary_url"] == new.url
        assert body["method"] == "rewind" and body["caught_up_s"] >= 0
        assert "/" in body["switchover_lsn"]
        wait_until(lambda: all(w.acknowledged_since(ended) >= ROWS_BEFORE for w in writers), timeout_s=30)
    finally:
        for writer in writers:
            writer.join()

    for writer in writers:
        assert not writer.failed, f"writes through {writer.region.name} failed: {writer.failed[:5]}"
        # The switchover really ran under this writer: some write was sent before it ended and answered after it
        # started (a held write, or one forwarded back and forth).
        assert any(sent < ended and answered > started for _, sent, answered in writer.acknowledged)
        acknowledged = {title for title, _, _ in writer.acknowledged}
        lost = acknowledged - titles_like(new, writer.prefix)
        assert not lost, f"{len(lost)} acknowledged writes through {writer.region.name} lost: {sorted(lost)[:5]}"

    on_old = wait_until(lambda: (s := old.status())["primary_reachable"] and s, timeout_s=10)
    assert on_old["role"] == "replica" and on_old["primary_url"] == new.url
    on_new = wait_until(lambda: (s := new.status())["replicas"] and s, timeout_s=10)
    assert on_new["role"] == "primary"
    assert [r["name"] for r in on_new["replicas"]] == [f"replica_{old.options['region'].replace('-', '_')}"]
    through_old = insert(old, f"{run}-after-through-old")
    assert through_old.status_code == 201, through_old.text
    assert through_old.headers[FORWARDED_HEADER] == new.options["region"]
    assert insert(new, f"{run}-after-through-new").status_code == 201
    wait_until(lambda: f"{run}-after-through-new" in titles_like(old, run), timeout_s=10)

    again = switchover(old, new.url)
    assert again.status_code == 200, again.text
    assert again.json() == {"role": "replica", "region": old.options["region"], "primary_url": new.url,
                            "already_switched": True}  # fmt: skip


def test_switchover_needs_the_service_role_and_a_well_formed_body(pair: Pair) -> None:
    primary, standby = pair.roles()
    anon = {"apikey": keys.ANON_KEY, "Authorization": f"Bearer {keys.ANON_KEY}"}
    assert switchover(primary, standby.url, headers=anon).status_code == 403
    for body in ({}, {"to": "ftp://x"}, {"to": 3}):
        refused = httpx.post(f"{primary.url}/_admin/switchover", headers=SERVICE, json=body)
        assert refused.status_code == 400 and '"to"' in refused.json()["message"], refused.text
    for timeout_s in (0, -1, "soon", True, 3600):
        refused = switchover(primary, standby.url, timeout_s=timeout_s)
        assert refused.status_code == 400 and "timeout_s" in refused.json()["message"], refused.text
    assert pair.roles() == (primary, standby)


def test_switchover_is_refused_when_the_target_is_not_our_standby(pair: Pair) -> None:
    primary, standby = pair.roles()
    itself = switchover(primary, primary.url)
    assert itself.status_code == 409 and "not a standby" in itself.json()["message"], itself.text
    with background(lambda: build_app(RegionConfig(region="ap-northeast-2", bcrypt_cost=4))) as stranger:
        other = switchover(primary, stranger.url)
        assert other.status_code == 409 and "not a standby" in other.json()["message"], other.text
        assert httpx.get(f"{stranger.url}/health").json()["role"] == "primary"
    assert pair.roles() == (primary, standby)
    assert insert(primary, "after-refusals").status_code == 201


def test_switchover_is_refused_on_a_standby(pair: Pair) -> None:
    primary, standby = pair.roles()
    refused = switchover(standby, standby.url)
    assert refused.status_code == 409 and "is a standby" in refused.json()["message"], refused.text
    assert pair.roles() == (primary, standby)
    assert standby.status()["primary_url"] == primary.url
    # A standby asked to hand over to the primary it follows is where a switchover would leave it: the same answer
    # as a repeated call (a client retrying after a lost response must not get an error).
    settled = switchover(standby, primary.url)
    assert settled.status_code == 200 and settled.json()["already_switched"] is True, settled.text


def test_a_target_that_does_not_catch_up_changes_nothing(pair: Pair) -> None:
    primary, standby = pair.roles()
    run_sql(standby.url, "select pg_wal_replay_pause()")
    try:
        assert insert(primary, "not-replayed-yet").status_code == 201
        timed_out = switchover(primary, standby.url, timeout_s=0.5)
        assert timed_out.status_code == 504, timed_out.text
        assert "did not catch up" in timed_out.json()["message"]
        assert pair.roles() == (primary, standby)
        assert insert(primary, "after-timeout").status_code == 201  # the gate is open again
    finally:
        run_sql(standby.url, "select pg_wal_replay_resume()")
    wait_until(lambda: "after-timeout" in titles_like(standby, "after-timeout"), timeout_s=10)


def test_switchover_loses_no_acknowledged_write(pair: Pair) -> None:
    _switch_under_writes(pair, "first")


def test_a_demoted_region_restarted_without_its_primarys_url_forwards_to_it(pair: Pair) -> None:
    """Singapore, started with a primary's options (no --primary-url), comes back on its data dir after a
    switchover as a standby that knows whom it follows (following.json) and forwards writes there."""
    if pair.roles()[0] is pair.singapore:
        assert switchover(pair.singapore, pair.japan.url).status_code == 200
    assert (Path(pair.singapore.options["data_dir"]) / FOLLOWING_FILE).is_file()
    pair.singapore.stop()
    pair.singapore.start()
    on_restarted = wait_until(lambda: (s := pair.singapore.status())["primary_reachable"] and s, timeout_s=15)
    assert on_restarted["role"] == "replica" and on_restarted["primary_url"] == pair.japan.url
    written = insert(pair.singapore, "through-restarted-standby")
    assert written.status_code == 201, written.text
    assert written.headers[FORWARDED_HEADER] == "ap-northeast-1"
    assert "through-restarted-standby" in titles_like(pair.japan, "through-restarted-standby")
    wait_until(lambda: titles_like(pair.singapore, "through-restarted-standby"), timeout_s=10)


def test_switching_back_loses_no_acknowledged_write_either(pair: Pair) -> None:
    _switch_under_writes(pair, "back")


def test_a_failed_promotion_starts_this_region_again_as_the_primary(monkeypatch: pytest.MonkeyPatch) -> None:
    """The target refuses its promotion after this region's PostgreSQL stopped: this region comes back as the
    primary it was (never two primaries, never none), its standby streams from it again, and writes go on."""

    async def refused(*_: object) -> None:
        raise TargetUnreachable("http://target refused the promotion (403): service-role key rejected")

    monkeypatch.setattr(switchover_module, "_promote", refused)
    with background(lambda: build_app(RegionConfig(bcrypt_cost=4))) as primary:
        config = RegionConfig(region="ap-northeast-1", role="replica", primary_url=primary.url, bcrypt_cost=4)
        with background(lambda: build_app(config)) as standby:
            failed = httpx.post(f"{primary.url}/_admin/switchover", headers=SERVICE, json={"to": standby.url},
                                timeout=SWITCH_TIMEOUT_S)  # fmt: skip
            assert failed.status_code == 502 and "primary again" in failed.json()["message"], failed.text
            assert httpx.get(f"{primary.url}/_replication/status").json()["role"] == "primary"
            written = httpx.post(f"{primary.url}/rest/v1/conversations", headers=SERVICE, json={"title": "still"})
            assert written.status_code == 201, written.text
            # The standby's WAL receiver reconnects on its own (wal_retrieve_retry_interval: 5 s).
            wait_until(lambda: run_sql(standby.url, "select 1 from conversations where title = 'still'"), 20)
            on_standby = httpx.get(f"{standby.url}/_replication/status").json()
            assert on_standby["role"] == "replica" and on_standby["primary_reachable"] is True
