"""Scenario settings: the `HARNESS_*` variables the user classes read, validated once per process.

Every value has a default that works against the reference stack with plain `locust -f`; a bad value is a
`ConfigError` naming the variable, the value and the valid form.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError
from harness.model.profile import USER_CLASSES
from harness.scenarios.sizes import DEFAULT_FILE_SIZES, SizeDistribution, parse_sizes

CREDENTIALS = "HARNESS_CREDENTIALS"
VIEWER_COUNTRY = "HARNESS_VIEWER_COUNTRY"
DELIVERY_TIMEOUT = "HARNESS_DELIVERY_TIMEOUT_S"
MEETING_STAY = "HARNESS_MEETING_STAY_S"
MEETING_PING_INTERVAL = "HARNESS_MEETING_PING_INTERVAL_S"
MEETING_JOIN_TIMEOUT = "HARNESS_MEETING_JOIN_TIMEOUT_S"
FILE_SIZES = "HARNESS_FILE_SIZES"
SCENARIO_WEIGHTS = "HARNESS_SCENARIO_WEIGHTS"
PROVISION_USERS = "HARNESS_PROVISION_USERS"
GROUP_SIZE = "HARNESS_GROUP_SIZE"
KEEP_USERS = "HARNESS_KEEP_USERS"
ACCEPT_ENCODING = "HARNESS_ACCEPT_ENCODING"
GROUP = "HARNESS_GROUP"
WORKERS_EXPECTED = "HARNESS_WORKERS_EXPECTED"
CONFIRM_REMOTE = "HARNESS_CONFIRM_REMOTE"
REFERENCE_STACK = "HARNESS_REFERENCE_STACK"
""""1": the target is a reference stack started elsewhere (docker-compose.yml's services), so users claim
their group's viewer country with the header its edge reads, as on a loopback stack (docs/compose.md)."""

DEFAULT_WEIGHTS: Mapping[str, int] = {"MessagingUser": 60, "MeetingUser": 5, "FileTransferUser": 10, "WebUser": 25}
"""mixed.py's weights when neither the profile's [scenarios] nor HARNESS_SCENARIO_WEIGHTS says otherwise."""

_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class ScenarioSettings:
    credentials_path: Path | None = None
    """HARNESS_CREDENTIALS: a `harness users provision` file; without one, users are provisioned at test start."""
    viewer_country: str | None = None
    """HARNESS_VIEWER_COUNTRY: ISO alpha-2 sent as CloudFront-Viewer-Country (local stack only); wins over the
    profile group's country."""
    delivery_timeout_s: float = 10.0
    """HARNESS_DELIVERY_TIMEOUT_S: a message not received this long after its send counts as lost."""
    meeting_stay_s: float = 20.0
    """HARNESS_MEETING_STAY_S: how long a MeetingUser stays in a meeting (must stay below the join timeout)."""
    meeting_ping_interval_s: float = 2.0
    """HARNESS_MEETING_PING_INTERVAL_S: seconds between timed signal pings while in a meeting."""
    meeting_join_timeout_s: float = 60.0
    """HARNESS_MEETING_JOIN_TIMEOUT_S: the server drops a participant that never publishes media after this long
    (LiveKit and the stand-in: 60 s); the stay must be shorter."""
    file_sizes: SizeDistribution = field(default_factory=lambda: parse_sizes(DEFAULT_FILE_SIZES, FILE_SIZES))
    """HARNESS_FILE_SIZES: upload sizes and weights, `10KB:70,100KB:20,1MB:8,10MB:2`."""
    weights: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    """HARNESS_SCENARIO_WEIGHTS: mixed.py's class weights, `MessagingUser=60,WebUser=40` (profile weights win)."""
    provision_users: int | None = None
    """HARNESS_PROVISION_USERS: users to create at test start (default: -u, or the profile's peak, plus one group)."""
    group_size: int = 4
    """HARNESS_GROUP_SIZE: members per provisioned group (conversations live inside a group)."""
    keep_users: bool = False
    """HARNESS_KEEP_USERS=1 keeps users provisioned at test start (default: removed when Locust quits)."""
    accept_encoding: str = "gzip, deflate, br"
    """HARNESS_ACCEPT_ENCODING: what WebUser accepts; the edge must answer with the best of these."""
    group: str | None = None
    """HARNESS_GROUP: the profile group every user of this process belongs to (set on a worker group's processes)."""
    workers_expected: int = 1
    """HARNESS_WORKERS_EXPECTED: worker processes in the run; provisioning at test start splits users across them."""
    confirm_remote: bool = False
    """HARNESS_CONFIRM_REMOTE=1: the run was started with --confirm-remote (a non-loopback target is allowed)."""

    def __post_init__(self) -> None:
        if self.meeting_stay_s >= self.meeting_join_timeout_s:
            raise ConfigError(
                f"{MEETING_STAY}: {self.meeting_stay_s:g} s is not below the join timeout "
                f"({MEETING_JOIN_TIMEOUT}={self.meeting_join_timeout_s:g} s): the server would drop the participant "
                "mid-meeting; use a shorter stay (e.g. 20)"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ScenarioSettings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        kwargs: dict[str, object] = {}
        if (path := get(CREDENTIALS)) is not None:
            kwargs["credentials_path"] = Path(path)
        if (country := get(VIEWER_COUNTRY)) is not None:
            kwargs["viewer_country"] = country_code(VIEWER_COUNTRY, country)
        for name, attr in (
            (DELIVERY_TIMEOUT, "delivery_timeout_s"),
            (MEETING_STAY, "meeting_stay_s"),
            (MEETING_PING_INTERVAL, "meeting_ping_interval_s"),
            (MEETING_JOIN_TIMEOUT, "meeting_join_timeout_s"),
        ):
            if (value := get(name)) is not None:
                kwargs[attr] = positive_seconds(name, value)
        if (sizes := get(FILE_SIZES)) is not None:
            kwargs["file_sizes"] = parse_sizes(sizes, FILE_SIZES)
        if (weights := get(SCENARIO_WEIGHTS)) is not None:
            kwargs["weights"] = parse_weights(weights)
        if (count := get(PROVISION_USERS)) is not None:
            kwargs["provision_users"] = whole_number(PROVISION_USERS, count, minimum=1, example="100")
        if (size := get(GROUP_SIZE)) is not None:
            kwargs["group_size"] = whole_number(GROUP_SIZE, size, minimum=2, example="4")
        kwargs["keep_users"] = get(KEEP_USERS) in ("1", "true", "yes")
        if (encoding := get(ACCEPT_ENCODING)) is not None:
            kwargs["accept_encoding"] = encoding
        kwargs["group"] = get(GROUP)
        if (workers := get(WORKERS_EXPECTED)) is not None:
            kwargs["workers_expected"] = whole_number(WORKERS_EXPECTED, workers, minimum=1, example="4")
        kwargs["confirm_remote"] = get(CONFIRM_REMOTE) == "1"
        return cls(**kwargs)  # type: ignore[arg-type]


def country_code(name: str, value: str) -> str:
    code = value.strip().upper()
    if not _COUNTRY.match(code):
        raise ConfigError(f"{name}: {value!r} is not a two-letter country code (ISO 3166 alpha-2, e.g. CN)")
    return code


def positive_seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise ConfigError(f"{name}: {value!r} is not a positive number of seconds (e.g. 10)")
    return seconds


def whole_number(name: str, value: str, *, minimum: int, example: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise ConfigError(f"{name}: {value!r} is not a whole number >= {minimum} (e.g. {example})")
    return number


def parse_weights(text: str) -> dict[str, int]:
    """`MessagingUser=60,WebUser=40` → weights; classes not named get 0 (left out)."""
    weights = dict.fromkeys(USER_CLASSES, 0)
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        name = name.strip()
        if not sep or name not in weights:
            raise ConfigError(
                f"{SCENARIO_WEIGHTS}: {part.strip()!r} is not CLASS=WEIGHT with CLASS one of "
                f"{', '.join(USER_CLASSES)} (e.g. MessagingUser=60,WebUser=40)"
            )
        weights[name] = whole_number(f"{SCENARIO_WEIGHTS}: {name}", value.strip(), minimum=0, example="60")
    if not any(weights.values()):
        raise ConfigError(f"{SCENARIO_WEIGHTS}: every weight is 0; give at least one class a weight (e.g. WebUser=1)")
    return weights
