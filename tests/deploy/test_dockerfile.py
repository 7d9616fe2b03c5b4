"""The Dockerfile and .dockerignore, read statically (no container engine here: docs/compose.md): multi-stage,
the locked versions, a non-root user, `harness` as entrypoint, OCI labels, and nothing secret or bulky sent."""

from __future__ import annotations

import fnmatch
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_multi_stage_locked_non_root_with_harness_as_entrypoint() -> None:
    instructions = _instructions()
    stages = [arg for op, arg in instructions if op == "FROM"]
    assert len(stages) == 2 and "AS build" in stages[0] and "AS runtime" in stages[1]
    runs = " ".join(arg for op, arg in instructions if op == "RUN")
    assert "-c requirements/lock.txt" in runs  # the tested versions
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("ENTRYPOINT", '["harness"]') in instructions
    runtime = instructions[[op for op, _ in instructions].index("FROM", 1) :]
    assert any(op == "COPY" and "--from=build" in arg for op, arg in runtime)
    labels = " ".join(arg for op, arg in instructions if op == "LABEL")
    for key in ("title", "description", "version", "revision", "licenses", "source"):
        assert f"org.opencontainers.image.{key}=" in labels, key


def test_dockerignore_keeps_secrets_reports_and_history_out() -> None:
    patterns = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines() if p.strip() and p[0] != "#"]

    def ignored(path: str) -> bool:
        verdict = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            if fnmatch.fnmatch(path, pattern.lstrip("!")) or fnmatch.fnmatch(path.split("/")[0], pattern.lstrip("!")):
                verdict = not negate
        return verdict

    for path in (
        "production.env",
        "staging.env",
        ".git",
        "reports",
        ".venv",
        "tests",
        "deploy/k8s/base/production.env",
    ):
        assert ignored(path), path
    for path in (
        "harness",
        "pyproject.toml",
        "requirements",
        "profiles",
        "netem",
        "locustfiles",
        "supabase",
        "README.md",
    ):
        assert not ignored(path), path
    copied = [arg.split()[0] for op, arg in _instructions() if op == "COPY" and "--from" not in arg]
    assert all(not ignored(src.rstrip("/")) for src in copied), copied  # nothing the build copies is ignored
