"""Every file the CLI reads, bad in every way we could think of and in the ways hypothesis finds: the CLI exits 2
with one message naming the file (and the field and its valid form where there is one), never a traceback.

Files: run profiles (`harness run PROFILE.toml`, `harness gate --profile`), network profiles (`harness net show`),
drill profiles (`harness drill --profile`), env files (`--env-file`), result.json (`harness gate`, `harness report`,
`--compare`), credentials (`harness users cleanup --credentials`), migrations (`--migrations`), locustfiles
(`--locustfile`), backup manifests and the DR journal and state.

The CLI runs in-process (`harness.cli.main`) for speed; a few runs go through the real entry point
(`python -m harness`). Commands that would start something with a valid file are fuzzed through a path that stops
before anything starts (`harness run … --locustfile <missing>`), or at the loader itself.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.backup.manifest import Manifest
from harness.cli import main
from harness.dr.journal import Journal
from harness.errors import ConfigError
from harness.model.credentials import Credentials
from harness.model.drill_profile import DrillProfile, load_drill_profile
from harness.model.hops import DeliveryHops, HopWindow, LegWindow, attribute_all
from harness.model.profile import DEFAULT_PROFILES_DIR, Arrival
from harness.model.result import Result, ResultBuilder, dump_result
from harness.model.sketch import Sketch
from harness.network.profiles import NETEM_DIR
from harness.refstack.postgres.migrations import check_folder
from harness.run.options import choose_locustfile
from tests.report.report_synth import T0, synthetic

EXAMPLES = int(os.environ.get("HARNESS_FUZZ_EXAMPLES", "150"))
"""Examples per fuzzer; raise it for a longer hunt (HARNESS_FUZZ_EXAMPLES=5000)."""
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FEW = settings(
    max_examples=max(1, EXAMPLES // 8), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
"""`harness report` draws charts (about 1 s per example): fewer examples."""

MISSING_LOCUSTFILE = "/nonexistent/harness-fuzz-locustfile.py"
"""`harness run PROFILE --locustfile <this>`: a valid profile stops at the locustfile check, before any start."""

# ---- helpers ----


def cli(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def assert_refused(code: int, err: str, *names: str) -> None:
    """Exit 2 with exactly one `harness: error:` message that names each of `names` (file, field, valid form)."""
    assert code == 2, err
    assert err.startswith("harness: error: ") and err.count("harness: error: ") == 1, err
    assert "Traceback" not in err
    for name in names:
        assert name in err, (name, err)


def toml_dumps(data: dict[str, Any]) -> str:
    """A small TOML writer (tests only): tables, inline arrays and inline tables, nan and inf."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"
        raise TypeError(type(v))

    lines: list[str] = []

    def table(prefix: str, d: dict[str, Any]) -> None:
        simple = {k: v for k, v in d.items() if not isinstance(v, dict)}
        subs = {k: v for k, v in d.items() if isinstance(v, dict)}
        if prefix and (simple or not subs):
            lines.append(f"[{prefix}]")
        lines.extend(f"{json.dumps(k)} = {value(v)}" for k, v in simple.items())
        for k, v in subs.items():
            table(f"{prefix}.{json.dumps(k)}" if prefix else json.dumps(k), v)

    table("", data)
    return "\n".join(lines) + "\n"


def leaf_paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value (tables, lists and scalars) in a parsed document."""
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for k, v in data.items():
            out += leaf_paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data[:3]):
            out += leaf_paths(v, (*prefix, i))
    return out


def replaced(data: Any, path: tuple[Any, ...], new: Any) -> Any:
    doc = copy.deepcopy(data)
    node = doc
    for part in path[:-1]:
        node = node[part]
    if new is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = new
    return doc


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


_DELETE = object()
text = st.text(max_size=12)
weird_numbers = st.sampled_from(
    [0, -1, 0.0, -0.0, -1.5, 1e-300, math.nan, math.inf, -math.inf, 1e308, 2**53 + 1, 2**63, -(2**63) - 1, 10**400]
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text, weird_numbers)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=6
)
toml_values = st.recursive(
    st.one_of(st.booleans(), st.integers(min_value=-(10**30), max_value=10**30), st.floats(), text, weird_numbers),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
deep = st.integers(min_value=65, max_value=400).map(nested)
"""Deeper than MAX_DEPTH but shallow enough for json.dumps and the test's TOML writer (deeper: text cases)."""
bad_bytes = st.one_of(
    st.binary(max_size=400),
    st.binary(max_size=200).map(lambda b: b + b"\xff\xfe" + b),  # never UTF-8
    st.binary(max_size=200).map(lambda b: b"\0" + b),  # binary
)


def mutations(base: Any, values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`base` with one value replaced (by `values` or deep nesting), or deleted."""
    paths = leaf_paths(base)
    return st.builds(replaced, st.just(base), st.sampled_from(paths), st.one_of(values, deep, st.just(_DELETE)))


# ---- base documents ----

SMOKE = (DEFAULT_PROFILES_DIR / "smoke.toml").read_text(encoding="utf-8")
CHINA_NET = (NETEM_DIR / "cn-telecom-peak-to-tokyo.toml").read_text(encoding="utf-8")
DRILL = (DEFAULT_PROFILES_DIR / "drill.toml").read_text(encoding="utf-8")


def _parsed(text_: str) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(text_)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-files")


def rich_result() -> Result:
    """A small result with every part filled (request legs, open-model arrivals, delivery hops), so mutations reach
    every field of the schema."""
    base = synthetic()
    b = ResultBuilder(5.0, worker="w1")
    for sec in range(12):
        t = T0 + sec
        b.record("rest.select", "GET", "baseline", 50.0 + sec, sec % 5 != 0, t, origin_region="ap-southeast-1",
                 user_class="WebUser", connect_ms=3.0 if sec % 2 else None, wait_ms=40.0, body_ms=7.0,
                 sent_bytes=10, wire_bytes=100)  # fmt: skip
        b.record("message.delivery", "WS", "baseline", 80.0, True, t)
        b.record_arrival(t, "WebUser", target=2.0, started=2, dropped=sec % 2, completed=2)
        b.record_users(t, 4)
        b.record_cpu(t, 30.0)
    legs = {leg: Sketch() for leg in ("commit", "feed", "client")}
    for leg, ms in (("commit", 5.0), ("feed", 90.0), ("client", 2.0)):
        legs[leg].add(ms)
    client = {"sent": 10, "acked": 10, "expected": 30, "received": 23, "delivered": 23, "lost": 7}
    hops = DeliveryHops(
        windows=[HopWindow(start_s=T0, client=client, server={"region r": {"feed": 10, "written": 23}})],
        legs=[LegWindow(start_s=T0, legs=legs)],
        server_pieces=["region r"],
    )
    hops = hops.model_copy(update={"attribution": attribute_all(hops)})
    result = b.build(base.run, base.gates)
    arrival = {"WebUser": Arrival(rate=2.0, max_users=4)}
    return result.model_copy(update={"hops": hops, "arrival": arrival})


@pytest.fixture(scope="module")
def good_result(files: Path) -> Path:
    return dump_result(rich_result(), files / "good" / "result.json")


@pytest.fixture(scope="module")
def result_doc(good_result: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(good_result.read_text())
    return doc


@pytest.fixture
def no_target_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("SUPABASE_", "LIVEKIT_", "HARNESS_")) or name == "DOMAIN_NAME":
            monkeypatch.delenv(name)
    yield


# ---- run profiles: `harness run PROFILE.toml` ----


def _run_profile(path: Path, reports: Path) -> tuple[int, str, str]:
    return cli("run", path, "--locustfile", MISSING_LOCUSTFILE, "--reports-dir", reports)


def test_a_valid_profile_reaches_the_locustfile_check(files: Path) -> None:
    """The fuzzers' premise: a profile that passes validation stops at --locustfile, before anything starts."""
    path = files / "valid.toml"
    path.write_text(SMOKE, encoding="utf-8")
    code, _, err = _run_profile(path, files / "reports")
    assert_refused(code, err, "--locustfile", MISSING_LOCUSTFILE)
    assert not (files / "reports").exists()


def test_a_non_utf8_profile_names_the_file_line_and_byte(files: Path) -> None:
    path = files / "latin1.toml"
    path.write_bytes(SMOKE.replace("A few users", "Quelques utilisateurs \xe9").encode("latin-1"))
    code, _, err = _run_profile(path, files / "reports")
    assert_refused(code, err, str(path), "line 2", "byte 0xe9", "UTF-8")


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "-inf", "0.01"])
def test_window_s_outside_its_range_is_refused_with_the_range(files: Path, value: str) -> None:
    path = files / "window.toml"
    path.write_text(SMOKE.replace("window_s = 1", f"window_s = {value}"), encoding="utf-8")
    code, _, err = _run_profile(path, files / "reports")
    assert_refused(code, err, str(path), "window_s: ", "is not a number of seconds from 0.1 (e.g. 5)")


# Every numeric field of a run profile, with a value TOML allows and the field does not, and the range it names.
NUMERIC_FIELDS = [
    (("workers",), "nan", "from 1"),
    (("load", "users"), "inf", "from 0"),
    (("load", "spawn_rate"), "0", "above 0"),
    (("load", "spawn_rate"), "nan", "above 0"),
    (("load", "duration_s"), "-inf", "above 0"),
    (("steady_state", "warmup_s"), "-1", "from 0"),
    (("steady_state", "cooldown_s"), "nan", "from 0"),
    (("steady_state", "start_s"), "inf", "from 0"),
    (("scenarios", "WebUser"), "-2", "from 0"),
    (("scenarios", "MessagingUser"), "nan", "from 0"),
    (("groups", "baseline", "weight"), "inf", "from 0"),
    (("gates", "min_rps"), "nan", "from 0"),
    (("gates", "p95_ms"), "-inf", "from 0"),
    (("gates", "max_error_pct"), "101", "from 0 to 100"),
    (("gates", "max_error_pct"), "nan", "from 0 to 100"),
    (("gates", "delivery_max_duplicates"), "inf", "from 0"),
    (("gates", "validity", "max_cpu_pct"), "inf", "from 0 to 100"),
    (("gates", "validity", "min_requests"), "-5", "from 0"),
]


@pytest.mark.parametrize(
    ("path", "value", "bound"), NUMERIC_FIELDS, ids=[".".join(f[0]) + "=" + f[1] for f in NUMERIC_FIELDS]
)
def test_each_numeric_field_refuses_nan_inf_and_out_of_range_values_naming_its_range(
    files: Path, path: tuple[str, ...], value: str, bound: str
) -> None:
    doc = replaced(_parsed(SMOKE), path, 0)
    text_ = toml_dumps(doc).replace(f"{json.dumps(path[-1])} = 0", f"{json.dumps(path[-1])} = {value}", 1)
    file = files / "field.toml"
    file.write_text(text_, encoding="utf-8")
    code, _, err = _run_profile(file, files / "reports")
    assert_refused(code, err, str(file), ".".join(path) + ": ", f" {bound}", "(e.g. ")


@pytest.mark.parametrize(
    ("text_", "names"),
    [
        ("users = 99999999999999999999999", ["load.users", "64-bit"]),
        ("users = " + "1" * 5000, ["not valid TOML"]),
        ("users = " + "[" * 100 + "]" * 100, ["load.users", "nested more than 64 levels"]),
        ("users = " + "[" * 5000 + "]" * 5000, ["nested too deeply"]),
        ("users = " + "{a=" * 3000 + "1" + "}" * 3000, ["nested too deeply"]),
    ],
)
def test_huge_numbers_and_deep_nesting_in_a_profile_are_refused(files: Path, text_: str, names: list[str]) -> None:
    path = files / "huge.toml"
    path.write_text(SMOKE.replace("users = 8", text_), encoding="utf-8")
    code, _, err = _run_profile(path, files / "reports")
    assert_refused(code, err, str(path), *names)


@pytest.mark.parametrize("kind", ["missing", "folder", "binary", "bom"])
def test_unreadable_profiles_are_refused(files: Path, kind: str) -> None:
    path = files / f"{kind}.toml"
    if kind == "folder":
        path.mkdir(exist_ok=True)
    elif kind == "binary":
        path.write_bytes(b"\x00\x01\x02ELF")
    elif kind == "bom":  # a byte-order mark (Windows editors) is not an error
        path.write_bytes(b"\xef\xbb\xbf" + SMOKE.encode())
    code, _, err = _run_profile(path, files / "reports")
    expected = {
        "missing": "No such file",
        "folder": "Is a directory",
        "binary": "not a text file",
        "bom": "--locustfile",
    }
    assert_refused(code, err, expected[kind])


def test_gate_profile_option_reads_the_profile_the_same_way(files: Path, good_result: Path) -> None:
    path = files / "gates.toml"
    path.write_bytes(b"[gates]\np95_ms = \xff\n")
    code, _, err = cli("gate", good_result, "--profile", path)
    assert_refused(code, err, str(path), "not UTF-8")


@FUZZ
@given(data=bad_bytes)
def test_fuzz_profile_bytes(files: Path, data: bytes) -> None:
    path = files / "fuzz-bytes.toml"
    path.write_bytes(data)
    code, _, err = _run_profile(path, files / "reports")
    assert_refused(code, err)
    assert str(path) in err or "--locustfile" in err


@FUZZ
@given(doc=mutations(_parsed(SMOKE), toml_values))
def test_fuzz_profile_structures(files: Path, doc: dict[str, Any]) -> None:
    path = files / "fuzz-doc.toml"
    path.write_text(toml_dumps(doc), encoding="utf-8")
    code, _, err = _run_profile(path, files / "reports")
    assert_refused(code, err)  # a profile that is still valid stops at the locustfile check
    assert str(path) in err or "--locustfile" in err or "network profile" in err


# ---- result.json: `harness gate`, `harness report`, `harness report --compare` ----


def _write_json(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")  # NaN and Infinity as Python writes them
    return path


RESULT_CASES = [
    ("window_s zero", lambda d: replaced(d, ("window_s",), 0), ["window_s", "greater than or equal to 0.1"]),
    ("NaN start", lambda d: replaced(d, ("run", "started_s"), math.nan), ["run.started_s", "NaN", "finite"]),
    ("infinite end", lambda d: replaced(d, ("run", "ended_s"), math.inf), ["run.ended_s", "Infinity"]),
    ("1e400", "1e400", ["not a finite number"]),
    ("huge count", lambda d: replaced(d, ("windows", 0, "stats", 0, "count"), 10**30), ["count", "2^53"]),
    ("date past 9999", lambda d: replaced(d, ("run", "started_s"), 1e300), ["run.started_s", "less than or equal"]),
    ("steady start NaN", lambda d: replaced(d, ("run", "steady_state", "start_s"), math.nan), ["start_s"]),
    ("sketch n null", lambda d: replaced(d, ("windows", 0, "stats", 0, "sketch", "n"), None), ["sketch", "count (n)"]),
    ("sketch k number", lambda d: replaced(d, ("windows", 0, "stats", 0, "sketch", "k"), 3), ["sketch k and c"]),
    ("sketch key huge", lambda d: replaced(d, ("windows", 0, "stats", 0, "sketch", "k", 0), 10**9), ["bucket key"]),
    ("surrogate", lambda d: replaced(d, ("run", "run_id"), "\ud800"), ["run.run_id", "surrogate"]),
    ("gates hugeint", lambda d: replaced(d, ("gates", "min_rps"), 2**60), ["gates.min_rps", "2^53"]),
    ("missing field", lambda d: replaced(d, ("run",), _DELETE), ["run: is required"]),
    ("wrong type", lambda d: replaced(d, ("windows",), "many"), ["windows", "valid list"]),
    ("unknown schema", lambda d: replaced(d, ("schema_version",), 2), ["schema_version: 2 is not supported"]),
    ("not an object", lambda d: [d], ["is not a result"]),
    ("truncated", "truncated", ["not valid JSON"]),
    ("deep", "deep", ["nested too deeply"]),
    ("deep but parseable", lambda d: replaced(d, ("run", "groups"), nested(100)), ["nested more than 64 levels"]),
    ("not UTF-8", "latin1", ["not UTF-8"]),
]


def _bad_result(path: Path, doc: dict[str, Any], how: Any) -> Path:
    if how == "1e400":
        path.write_text(json.dumps(doc).replace('"window_s": 5.0', '"window_s": 1e400'), encoding="utf-8")
    elif how == "truncated":
        path.write_text(json.dumps(doc)[:500], encoding="utf-8")
    elif how == "deep":
        path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    elif how == "latin1":
        path.write_bytes(json.dumps(doc).replace('"china"', '"chin\xe4"').encode("latin-1"))
    else:
        _write_json(path, how(doc))
    return path


@pytest.mark.parametrize(("name", "how", "names"), RESULT_CASES, ids=[c[0] for c in RESULT_CASES])
def test_a_bad_result_is_refused_by_gate_report_and_compare(
    files: Path, good_result: Path, result_doc: dict[str, Any], name: str, how: Any, names: list[str]
) -> None:
    path = _bad_result(files / "bad-result.json", result_doc, how)
    for argv in (
        ("gate", path),
        ("report", path, "--out", files / "out"),
        ("report", good_result, "--compare", path, "--out", files / "out"),
    ):
        code, _, err = cli(*argv)
        assert_refused(code, err, str(path), *names)


def test_report_to_a_folder_that_cannot_be_made_names_it(files: Path, good_result: Path) -> None:
    blocker = files / "a-file"
    blocker.write_text("x")
    code, _, err = cli("report", good_result, "--out", blocker / "sub")
    assert_refused(code, err, str(blocker))


@FUZZ
@given(data=bad_bytes)
def test_fuzz_result_bytes(files: Path, data: bytes) -> None:
    path = files / "fuzz-bytes.json"
    path.write_bytes(data)
    code, _, err = cli("gate", path)
    assert_refused(code, err, str(path))


def _gate_or_refused(code: int, out: str, err: str, path: Path) -> None:
    """A still-valid result is judged (0, 1, or 2 with an `invalid` verdict); anything else is refused."""
    if code == 2 and "verdict: invalid" not in out:
        assert_refused(code, err, str(path))
    else:
        assert code in (0, 1, 2) and "verdict: " in out and not err, (code, out, err)


@FUZZ
@given(doc=st.data())
def test_fuzz_result_structures_gate(files: Path, result_doc: dict[str, Any], doc: st.DataObject) -> None:
    mutated = doc.draw(mutations(result_doc, json_values))
    path = _write_json(files / "fuzz-doc.json", mutated)
    code, out, err = cli("gate", path)
    _gate_or_refused(code, out, err, path)


@FEW
@given(doc=st.data())
def test_fuzz_result_structures_report_and_compare(
    files: Path, good_result: Path, result_doc: dict[str, Any], doc: st.DataObject
) -> None:
    mutated = doc.draw(mutations(result_doc, json_values))
    path = _write_json(files / "fuzz-report.json", mutated)
    for argv in (("report", path, "--out", files / "out"), ("report", good_result, "--compare", path)):
        code, _, err = cli(*argv)
        if code != 0:
            assert_refused(code, err, str(path))


# ---- network profiles: `harness net show PATH.toml` (and `--network` / `--overlay` of a run) ----


def _net_show(path: Path) -> tuple[int, str, str]:
    return cli("net", "show", path, "--json")


@pytest.mark.parametrize(
    ("old", "new", "names"),
    [
        ("one_way_ms = 105", "one_way_ms = nan", ["latency.one_way_ms: NaN is out of range: must be at least 0"]),
        ("one_way_ms = 105", "one_way_ms = inf", ["latency.one_way_ms: Infinity is out of range"]),
        ("one_way_ms = 105", "one_way_ms = 1" + "0" * 30, ["latency.one_way_ms", "64-bit"]),
        ("one_way_ms = 105", "one_way_ms = " + "[" * 3000 + "]" * 3000, ["nested too deeply"]),
        ('name = "', 'name = "\xff', ["not UTF-8"]),
    ],
)
def test_a_bad_network_profile_is_refused(files: Path, old: str, new: str, names: list[str]) -> None:
    assert old in CHINA_NET
    path = files / "net.toml"
    path.write_bytes(CHINA_NET.replace(old, new, 1).encode("latin-1", "replace") if "\xff" in new else b"")
    if "\xff" not in new:
        path.write_text(CHINA_NET.replace(old, new, 1), encoding="utf-8")
    code, _, err = _net_show(path)
    assert_refused(code, err, str(path), *names)


def test_a_bad_network_profile_named_by_a_run_profile_is_refused(files: Path) -> None:
    net = files / "netem-bad.toml"
    net.write_text(CHINA_NET.replace("one_way_ms = 105", "one_way_ms = -inf"), encoding="utf-8")
    code, _, err = cli("run", "china", "--network", net, "--locustfile", MISSING_LOCUSTFILE)
    assert_refused(code, err, str(net), "one_way_ms")


@FUZZ
@given(data=bad_bytes)
def test_fuzz_network_profile_bytes(files: Path, data: bytes) -> None:
    path = files / "fuzz-net.toml"
    path.write_bytes(data)
    code, _, err = _net_show(path)
    if code != 0:  # an empty file is a valid (empty) profile
        assert_refused(code, err, str(path))


@FUZZ
@given(doc=mutations(_parsed(CHINA_NET), toml_values))
def test_fuzz_network_profile_structures(files: Path, doc: dict[str, Any]) -> None:
    path = files / "fuzz-net-doc.toml"
    path.write_text(toml_dumps(doc), encoding="utf-8")
    code, _, err = _net_show(path)
    if code != 0:
        assert_refused(code, err, str(path))


# ---- drill profiles: `harness drill failover|recovery --profile PATH` ----


@pytest.mark.parametrize(
    ("old", "new", "names"),
    [
        ("hold_s = 30", "hold_s = inf", ["drill.hold_s: Infinity is not a number of seconds from 1"]),
        ("fault_at_s = 10", "fault_at_s = nan", ["drill.fault_at_s: NaN", "from 1"]),
        ("writers = 16", "writers = 501", ["load.writers: 501", "from 1 to 500"]),
        ("rto_s = 30", "rto_s = -1", ["gates.rto_s: -1", "from 0"]),
        ("error_pct = 5", "error_pct = nan", ["gates.error_pct: NaN", "from 0 to 100"]),
        ("interval_s = 1.0", "interval_s = 0", ["monitor.interval_s: 0", "above 0"]),
        ("writers = 16", "writers = 1" + "0" * 25, ["load.writers", "64-bit"]),
        ("writers = 16", "writers = " + "[" * 3000 + "]" * 3000, ["nested too deeply"]),
        ('description = "', 'description = "\xff', ["not UTF-8"]),
    ],
)
def test_a_bad_drill_profile_is_refused_before_anything_starts(
    files: Path, old: str, new: str, names: list[str]
) -> None:
    assert old in DRILL
    path = files / "drill.toml"
    text_ = DRILL.replace(old, new, 1)
    path.write_bytes(text_.encode("latin-1", "replace") if "\xff" in new else text_.encode())
    code, _, err = cli("drill", "failover", "--profile", path, "--reports-dir", files / "drills")
    assert_refused(code, err, str(path), *names)
    assert not (files / "drills").exists()


@FUZZ
@given(data=st.one_of(bad_bytes, mutations(_parsed(DRILL), toml_values).map(lambda d: toml_dumps(d).encode())))
def test_fuzz_drill_profile(files: Path, data: bytes) -> None:
    path = files / "fuzz-drill.toml"
    path.write_bytes(data)
    try:
        profile = load_drill_profile(str(path))
    except ConfigError as exc:
        assert str(exc).startswith(str(path)), exc
    else:
        assert isinstance(profile, DrillProfile)
        numbers = [
            v for part in (profile.drill, profile.load, profile.monitor, profile.gates) for v in part.__dict__.values()
        ]
        assert all(math.isfinite(v) for v in numbers if isinstance(v, float))


# ---- env files: `--env-file` ----


@pytest.mark.parametrize(
    ("content", "names"),
    [
        (b"SUPABASE_URL=http://127.0.0.1:1\nSUPABASE_ANON_KEY=\xff\xfe\n", ["line 2", "not UTF-8"]),
        (b"\x7fELF\x02\x01\x01\x00\x00", ["not a text file"]),
        (None, ["No such file"]),
    ],
)
def test_a_bad_env_file_is_refused(files: Path, no_target_env: None, content: bytes | None, names: list[str]) -> None:
    path = files / "bad.env"
    path.unlink(missing_ok=True)
    if content is not None:
        path.write_bytes(content)
    for argv in (
        ("users", "cleanup", "--prefix", "fuzz", "--env-file", path),
        ("run", "smoke", "--env-file", path, "--locustfile", MISSING_LOCUSTFILE),
        ("dr", "status", "--env-file", path, "--state-dir", files / "dr-state"),
    ):
        code, _, err = cli(*argv)
        if argv[0] == "run":  # the run checks its locustfile first; the env file is read when the run starts
            assert_refused(code, err, "--locustfile")
            continue
        assert_refused(code, err, str(path), *names)


@FUZZ
@given(data=bad_bytes)
def test_fuzz_env_file(files: Path, no_target_env: None, data: bytes) -> None:
    path = files / "fuzz.env"
    path.write_bytes(data)
    code, _, err = cli("users", "cleanup", "--prefix", "fuzz", "--env-file", path)
    assert_refused(code, err)
    assert str(path) in err


# ---- credentials: `harness users cleanup --credentials FILE` ----


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe{}",
        b"[" * 50_000,
        b'{"format": "harness-credentials/1", "users": [' + b"[" * 200 + b"]" * 200 + b"]}",
        b"[]",
    ],
)
def test_a_bad_credentials_file_is_refused(files: Path, no_target_env: None, content: bytes) -> None:
    path = files / "credentials.json"
    path.write_bytes(content)
    code, _, err = cli("users", "cleanup", "--credentials", path)
    assert_refused(code, err, str(path))


@FUZZ
@given(data=st.one_of(bad_bytes, json_values.map(lambda v: json.dumps(v).encode())))
def test_fuzz_credentials(files: Path, data: bytes) -> None:
    path = files / "fuzz-credentials.json"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=str(path)):
        Credentials.load(path)


# ---- migrations (`--migrations DIR`) and locustfiles (`--locustfile FILE`) ----


def test_a_non_utf8_migration_is_refused_before_the_stack_starts(files: Path) -> None:
    folder = files / "migrations"
    folder.mkdir(exist_ok=True)
    (folder / "20250101000000_init.sql").write_bytes(b"create table caf\xe9 (id int);\n")
    for argv in (("target", "up", "--migrations", folder), ("run", "smoke", "--migrations", folder)):
        code, _, err = cli(*argv)
        assert_refused(code, err, "20250101000000_init.sql", "line 1", "not UTF-8")


@FUZZ
@given(data=bad_bytes)
def test_fuzz_migration_files(files: Path, data: bytes) -> None:
    folder = files / "fuzz-migrations"
    folder.mkdir(exist_ok=True)
    (folder / "1_x.sql").write_bytes(data)
    try:
        check_folder(folder)
    except ConfigError as exc:
        assert "1_x.sql" in str(exc)


@pytest.mark.parametrize(
    ("content", "names"),
    [
        (b"print('caf\xe9')\n", ["not UTF-8"]),
        (b"def (:\n", [":1: not valid Python"]),
        (b"x = 1\0", ["not a text"]),
    ],
)
def test_a_bad_locustfile_is_refused_before_anything_starts(files: Path, content: bytes, names: list[str]) -> None:
    path = files / "bad_locustfile.py"
    path.write_bytes(content)
    code, _, err = cli("run", "smoke", "--locustfile", path, "--reports-dir", files / "lf-reports")
    assert_refused(code, err, str(path), *names)
    assert not (files / "lf-reports").exists()


@FUZZ
@given(data=bad_bytes)
def test_fuzz_locustfile(files: Path, data: bytes) -> None:
    path = files / "fuzz_locustfile.py"
    path.write_bytes(data)
    try:
        choose_locustfile(path)
    except ConfigError as exc:
        assert str(path) in str(exc)


# ---- backup manifests and the DR journal (files the CLI reads back from disk) ----


@FUZZ
@given(
    data=st.one_of(
        bad_bytes, json_values.map(lambda v: json.dumps(v).encode()), deep.map(lambda v: json.dumps(v).encode())
    )
)
def test_fuzz_backup_manifest(data: bytes) -> None:
    with pytest.raises(ConfigError, match="manifest"):
        Manifest.from_json(data, "manifest.json")


@FUZZ
@given(journal=bad_bytes, state=st.one_of(bad_bytes, json_values.map(lambda v: json.dumps(v).encode())))
def test_fuzz_dr_journal_and_state(files: Path, journal: bytes, state: bytes) -> None:
    """A damaged journal or state file never stops `harness dr` (a failover must still run): bad lines are skipped,
    a bad state reads as empty."""
    folder = files / "dr"
    folder.mkdir(exist_ok=True)
    (folder / "journal.jsonl").write_bytes(journal + b"\n" + b"[" * 5000 + b"\n" + b'{"event": "failover"}\n')
    (folder / "state.json").write_bytes(state)
    j = Journal(folder, out=None)
    assert all(isinstance(e, dict) for e in j.last_actions())
    assert j.last_actions()[-1] == {"event": "failover"}
    assert isinstance(j.state(), dict)
    j.set_state(command_switch_region="ap-northeast-1")
    assert j.state()["command_switch_region"] == "ap-northeast-1"


# ---- the real entry point ----


@pytest.mark.parametrize(
    ("argv", "make", "names"),
    [
        (("run", "{f}", "--reports-dir", "{d}"), lambda f: f.write_bytes(b'name = "x\xff"\n'), ["not UTF-8"]),
        (
            ("run", "{f}", "--reports-dir", "{d}"),
            lambda f: f.write_text(SMOKE.replace("window_s = 1", "window_s = 0")),
            ["window_s: 0"],
        ),
        (("gate", "{f}"), lambda f: f.write_text("[" * 100_000), ["nested too deeply"]),
        (("report", "{f}"), lambda f: f.write_text('{"schema_version": 1, "window_s": NaN}'), ["window_s: NaN"]),
    ],
)
def test_the_real_entry_point_exits_2_with_one_line(
    tmp_path: Path, argv: tuple[str, ...], make: Any, names: list[str]
) -> None:
    path = tmp_path / "input"
    make(path)
    args = [a.format(f=path, d=tmp_path / "reports") for a in argv]
    done = subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"harness: error: {path}: "), done.stderr
    for name in names:
        assert name in done.stderr
    assert not (tmp_path / "reports").exists()
