"""`bench/run --quick` with tiny sizes: one invocation against a real reference stack writes every section's table
with the header (machine, date, commit), to stdout and to --out. Shapes only, never speed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TINY = ["--rounds", "1", "--rest-s", "1", "--rest-users", "2", "--e2e-users", "4", "--e2e-s", "30",
        "--synthetic", "2000", "--sockets", "20", "--connect-s", "20"]  # fmt: skip


def rows_of(text: str, heading: str) -> list[list[str]]:
    """The data rows of the first table after `heading`, as cells."""
    section = text.split(heading, 1)[1]
    block: list[str] = []
    for line in section.splitlines():
        if line.startswith("|"):
            block.append(line)
        elif block:
            break
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in block[2:]]  # after header, |---|


@pytest.mark.slow
def test_quick_run_writes_every_table(tmp_path: Path) -> None:
    out = tmp_path / "side-by-side.md"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "run"), "--quick", "--out", str(out), *TINY],
                          capture_output=True, text=True, timeout=400, cwd=tmp_path, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    assert done.stdout == text

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    assert re.search(rf"commit `{commit.stdout.strip()}(-dirty)?`", text)
    for key in ("CPU", "cores", "RAM", "kernel", "Python", "PostgreSQL"):
        assert re.search(rf"^- \*\*{key}\*\*: \S", text, re.M), key

    client = rows_of(text, "## 1.")
    assert [row[1] for row in client] == ["wrk", "bare Locust FastHttpUser", "harness SupabaseSession"]
    assert all(int(row[2].replace(",", "")) > 0 for row in client)  # req/s measured for each generator
    assert re.search(r"\*\*\d+ %\*\* per CPU-s", client[-1][-1])

    e2e = rows_of(text, "## 2.")
    assert [row[0] for row in e2e] == ["`harness load` (MessagingUser)", "bare Locust → edge → region"]
    assert all(int(row[5].replace(",", "")) > 0 for row in e2e)  # requests in the steady state, both chains

    recorded = rows_of(text, "**Recorded")
    synthetic = rows_of(text, "**Synthetic")
    for rows in (recorded, synthetic):
        assert [row[0] for row in rows] == ["p50", "p95", "p99", "p99.9"]
        for row in rows:  # the sketch stays within its 1 % bound of the exact value
            assert abs(float(row[3].rstrip(" %"))) <= 1.0 + 1e-9

    realtime = rows_of(text, "## 4.")
    assert realtime[0][:3] == ["20", "20", "20"]  # asked, held, joined
