"""The harness's one exception tree. Raise deep, exit at the edge: only `harness.cli` turns these into messages
and exit codes.

    HarnessError                 exit 2, message printed without a traceback
     ├── ConfigError             bad CLI value, env var or profile (names the file, field, value and valid form)
     ├── TargetUnreachable       the target (or the reference stack we started) does not answer
     ├── NetworkShapingError     Toxiproxy or kernel shaping failed, or needs root
     └── ProvisionError          the target refused to create or remove test users or their data

An invalid run (no traffic, missing workers, a saturated generator) is a verdict, not an exception: the gates
return it and the run still writes its report (exit 2).
"""

from __future__ import annotations

from pathlib import Path


class HarnessError(Exception):
    """Base of every error the harness reports to a user; its message says what is wrong and how to fix it."""

    exit_code = 2


class ConfigError(HarnessError):
    """A configuration value is wrong. The message names where it came from, the value, and the valid form."""


class TargetUnreachable(HarnessError):
    """The system under test does not answer."""

    report_dir: Path | None = None
    """The run folder holding the report that says so, when a run wrote one (its results still go to S3)."""


class NetworkShapingError(HarnessError):
    """Network conditions could not be applied or removed."""


class ProvisionError(HarnessError):
    """The target refused to create or delete test users or their data (message: operation, status, server text)."""
