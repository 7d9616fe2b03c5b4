"""Results in S3 (`--results-url`, `harness gate|report s3://…`) against moto's server mode on loopback: a real
run uploads its reports, and the gate and the report read them back from there."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from loadgen_helpers import REST_READ, run_harness, write_profile

from harness.artifacts.s3 import ResultsStore
from harness.dr.aws import AwsSettings
from harness.loadgen.cluster import free_port
from harness.run.cli import _upload
from tests.conftest import MotoServer

BUCKET = "harness-results"
NO_RPS_GATE = "[gates]\nmin_rps = false\n"


@pytest.fixture
def moto(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """moto with AWS_ENDPOINT_URL set, so the harness (and its child processes) only ever talk to it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    return moto_server


def _s3(moto: MotoServer):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=moto.endpoint_url, region_name=moto.region)


def _create_bucket(moto: MotoServer) -> None:
    _s3(moto).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": moto.region})


@pytest.mark.slow
def test_a_run_uploads_its_reports_and_gate_and_report_read_them_back(
    tmp_path: Path, stack_env_file: Path, moto: MotoServer
) -> None:
    _create_bucket(moto)
    profile = write_profile(tmp_path / "s3.toml", extra=NO_RPS_GATE)
    done = run_harness(
        "run", str(profile), "--env-file", str(stack_env_file), "--workers", "1", "--locustfile", str(REST_READ),
        "--reports-dir", str(tmp_path), "--run-id", "up", "--results-url", f"s3://{BUCKET}/ci/",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"results uploaded to s3://{BUCKET}/ci/up/" in done.stderr
    listed = _s3(moto).list_objects_v2(Bucket=BUCKET, Prefix="ci/up/")
    keys = {o["Key"] for o in listed.get("Contents", [])}
    assert {"ci/up/result.json", "ci/up/junit.xml", "ci/up/summary.md", "ci/up/report.html"} <= keys
    body = _s3(moto).get_object(Bucket=BUCKET, Key="ci/up/result.json")
    assert body["ContentType"] == "application/json"
    assert json.loads(body["Body"].read()) == json.loads((tmp_path / "up" / "result.json").read_text())
    assert moto.secret_key not in done.stderr + done.stdout

    gate = run_harness("gate", f"s3://{BUCKET}/ci/up/result.json")
    assert gate.returncode == 0, gate.stderr
    assert "PASSED" in gate.stdout.upper()
    folder = run_harness("gate", f"s3://{BUCKET}/ci/up", "--profile", str(write_profile(
        tmp_path / "strict.toml", extra="[gates]\nmin_rps = false\np95_ms = 0.001\n")))  # fmt: skip
    assert folder.returncode == 1, folder.stdout  # the run folder's result, judged by a stricter profile

    out = tmp_path / "again"
    report = run_harness("report", f"s3://{BUCKET}/ci/up/", "--out", str(out))
    assert report.returncode == 0, report.stderr
    assert (out / "report.html").is_file() and (out / "result.json").is_file()


def test_a_missing_bucket_is_refused_before_the_run_starts(tmp_path: Path, moto: MotoServer) -> None:
    profile = write_profile(tmp_path / "never.toml")
    done = run_harness(
        "run", str(profile), "--host", "http://127.0.0.1:9", "--reports-dir", str(tmp_path), "--run-id", "never",
        "--results-url", "s3://no-such-bucket/x",
    )  # fmt: skip
    assert done.returncode == 2
    assert "bucket 'no-such-bucket' does not exist" in done.stderr
    assert not (tmp_path / "never").exists()  # refused before anything ran
    assert moto.secret_key not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://bucket/x", "is not an S3 URL"),
        ("s3://Bad_Bucket/x", "is not an S3 bucket name"),
        ("s3://good-bucket/a/../b", "'..' part"),
    ],
)
def test_a_malformed_results_url_exits_2(tmp_path: Path, url: str, message: str) -> None:
    done = run_harness("run", str(write_profile(tmp_path / "p.toml")), "--results-url", url)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_gate_of_a_missing_object_exits_2_naming_it(moto: MotoServer) -> None:
    _create_bucket(moto)
    done = run_harness("gate", f"s3://{BUCKET}/ci/nothing/result.json")
    assert done.returncode == 2
    assert f"s3://{BUCKET}/ci/nothing/result.json: no such object" in done.stderr


def test_a_failed_upload_turns_green_into_2_and_keeps_red(tmp_path: Path, moto: MotoServer) -> None:
    _create_bucket(moto)
    (tmp_path / "result.json").write_text("{}", encoding="utf-8")
    store = ResultsStore(f"s3://{BUCKET}/ci", AwsSettings.from_env()).check()
    _s3(moto).delete_bucket(Bucket=BUCKET)  # gone between the check and the end of the run
    assert _upload(store, tmp_path, "late", 0) == 2
    assert _upload(store, tmp_path, "late", 1) == 1


@pytest.fixture
def closing_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An "S3 endpoint" on loopback that accepts each connection and closes it at once (a proxy or load balancer
    dropping requests): botocore raises ConnectionClosedError, which is no ClientError."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}"
    # One attempt per call (AWS_MAX_ATTEMPTS, as the AWS CLI reads it): the default 6, with backoff, take ~15 s.
    env = {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "k-id",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_MAX_ATTEMPTS": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        yield url
    finally:
        stop.set()
        thread.join(5)
        server.close()


SECRET = "closing-endpoint-secret-key"


def test_an_s3_that_drops_connections_is_an_error_not_a_red_gate(closing_endpoint: str) -> None:
    done = run_harness("gate", f"s3://{BUCKET}/ci/up/result.json")
    # exit 1 would say "the release is red": a network failure must be 2, one line, no traceback
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert f"s3://{BUCKET}/ci/up/result.json: cannot reach S3 at {closing_endpoint}" in done.stderr
    assert SECRET not in done.stderr + done.stdout


def test_an_upload_that_loses_its_connection_turns_green_into_2(tmp_path: Path, closing_endpoint: str) -> None:
    (tmp_path / "result.json").write_text("{}", encoding="utf-8")
    store = ResultsStore(f"s3://{BUCKET}/ci", AwsSettings.from_env())  # not checked: the endpoint broke later
    assert _upload(store, tmp_path, "late", 0) == 2
    assert _upload(store, tmp_path, "late", 130) == 130


def test_gate_of_a_missing_bucket_names_the_bucket_and_leaves_no_temporary_folder(
    tmp_path: Path, moto: MotoServer
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    done = run_harness("gate", "s3://no-such-bucket/ci/up/result.json", env={"TMPDIR": str(tmp)})
    assert done.returncode == 2
    assert "s3://no-such-bucket/ci/up/result.json: bucket 'no-such-bucket' does not exist" in done.stderr
    assert [p.name for p in tmp.iterdir() if p.name.startswith("harness-s3-")] == []


def test_a_run_whose_target_is_down_still_uploads_the_report_that_says_so(tmp_path: Path, moto: MotoServer) -> None:
    _create_bucket(moto)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = run_harness(
        "run", str(write_profile(tmp_path / "dead.toml")), "--host", url, "--reports-dir", str(tmp_path),
        "--run-id", "dead", "--results-url", f"s3://{BUCKET}/ci",
    )  # fmt: skip
    assert done.returncode == 2 and "does not answer" in done.stderr
    assert f"results uploaded to s3://{BUCKET}/ci/dead/" in done.stderr
    junit = _s3(moto).get_object(Bucket=BUCKET, Key="ci/dead/junit.xml")["Body"].read().decode()
    assert "target unreachable" in junit  # a Kubernetes master that could not reach the target says why in S3
