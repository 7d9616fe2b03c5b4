"""Per-process state shared by every user class of one Locust environment.

    events.init ──► install(environment)
    test_start  ──► RunState.start: target ─► credentials (HARNESS_CREDENTIALS, or provision now) ─► tracker
                    ─► delivery expiry greenlet (every EXPIRE_INTERVAL_S)
    user.on_start ─► slots.acquire ─► harness.model.assign ─► (user, conversations, group, viewer country)
    test_stop   ──► stop the expiry greenlet;   quitting ──► remove users provisioned at test start

A setup problem (no target, no service key to provision, a bad credentials file) is logged once with its fix,
Locust quits with exit code 2, and users that start anyway stop at once. Master runners do none of this: they
run no users.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import os
import secrets
import weakref
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from harness.errors import ConfigError, HarnessError
from harness.model.assign import Assignment, SlotPool, assignment_for
from harness.model.credentials import Credentials
from harness.model.delivery import DeliveryTracker
from harness.model.hop_counts import Fault
from harness.model.profile import ENVIRONMENT_ATTRIBUTE, Profile
from harness.model.target_config import TargetConfig, load_target
from harness.scenarios.delivery_recorder import DeliveryRecorder
from harness.scenarios.provisioning import provision_users, remove_users
from harness.scenarios.settings import REFERENCE_STACK, ScenarioSettings

log = logging.getLogger(__name__)

EXPIRE_INTERVAL_S = 1.0
"""How often pending messages are checked against the delivery timeout."""
RECENT_FILES = 20
"""Uploaded paths remembered per conversation, for downloads by its members."""
NO_TARGET = (
    "no target: pass --host with the edge or region URL (e.g. --host http://127.0.0.1:54320 for the local "
    "reference stack), or set SUPABASE_URL and SUPABASE_ANON_KEY (and SUPABASE_SERVICE_ROLE_KEY to provision users)"
)

CONFIRM_HINT = "--confirm-remote (HARNESS_CONFIRM_REMOTE=1 under plain Locust)"


@dataclass(frozen=True)
class Role:
    """Who a Locust user plays: the assignment plus the user group and viewer country it claims."""

    assignment: Assignment
    group: str
    country: str | None


class RunState:
    def __init__(self, environment: Environment, settings: ScenarioSettings) -> None:
        self.environment = environment
        self.settings = settings
        self.target: TargetConfig | None = None
        self.credentials: Credentials | None = None
        self.provisioned_path: Path | None = None
        """Credentials file of users provisioned at test start (removed, with the users, when Locust quits)."""
        self.run_id = ""
        self.error: str | None = None
        self.worker_index = 0
        self.worker_count = 1
        self.slots = SlotPool()
        self.visitors = itertools.count()
        """Numbers of users without accounts (WebUser), for their group."""
        self.recorder: DeliveryRecorder | None = None
        self.files: dict[str, deque[tuple[str, str]]] = {}
        """conversation id → recent (object path, uploader id)."""
        self._seq: dict[str, int] = {}
        self._expiry: gevent.Greenlet | None = None
        self.settings_error: str | None = None
        """A bad HARNESS_* value: reported at test start (init is too early to quit)."""

    # ---- lifecycle ----

    @property
    def needs_accounts(self) -> bool:
        """Whether any user class plays test users (web.py alone needs no accounts, so no service key)."""
        return any(getattr(cls, "needs_account", False) for cls in self.environment.user_classes)

    @property
    def ready(self) -> bool:
        if self.error is not None or self.target is None:
            return False
        return self.credentials is not None or not self.needs_accounts

    def start(self) -> None:
        """Resolve the target and the users (idempotent: a second test_start keeps them)."""
        if self.settings_error is not None and self.error is None:
            self.fail(self.settings_error)
        if self.target is None and self.error is None:
            try:
                self._setup()
            except HarnessError as exc:
                self.fail(str(exc))
                return
        if self._expiry is None and self.recorder is not None:
            self._expiry = gevent.spawn(self._expire_loop)

    def fail(self, message: str) -> None:
        self.error = message
        log.error("harness scenarios: %s", message)
        self.environment.process_exit_code = 2
        runner = self.environment.runner
        if runner is not None:
            gevent.spawn(runner.quit)  # not from inside test_start: let start() return first

    def _setup(self) -> None:
        target = resolve_target(self.environment.host or _class_host(self.environment))
        # Every host (DOMAIN_NAME's for web.py included) before the first request; also under plain Locust.
        target.check_allowed(confirmed=self.settings.confirm_remote, confirm_hint=CONFIRM_HINT)
        if not self.needs_accounts:
            self.target = target
            return
        path = self.settings.credentials_path
        if path is not None:
            credentials = Credentials.load(path)
            runner = self.environment.runner
            if isinstance(runner, WorkerRunner):
                self.worker_index = max(runner.worker_index, 0)
                self.worker_count = self.settings.workers_expected
        else:
            count = self._provision_count()
            log.info("harness scenarios: provisioning %d test users at %s", count, target.supabase_url)
            credentials, self.provisioned_path = provision_users(target.supabase_url, count, self.settings.group_size)
        # A fresh id per process start: a reused credentials file must not collide with an earlier run's
        # client_msg_ids (the insert would be a 409 and never reach anyone).
        self.run_id = f"{credentials.run_id}-{secrets.token_hex(3)}"
        tracker = DeliveryTracker(self.run_id, credentials.membership())
        profile = _profile(self.environment)
        self.recorder = DeliveryRecorder(
            tracker,
            self.settings.delivery_timeout_s,
            window_s=profile.window_s if profile is not None else 5.0,
            fault=Fault.from_env(),  # the test hook HARNESS_FAULT_DROP_HOP=received:<n> (hop_counts.py)
        )
        self.credentials = credentials
        self.target = target

    def check_url(self, what: str, url: str) -> bool:
        """Whether traffic may go to `url`, which a response named (the token function's LiveKit URL): the target's
        own rule. A refusal ends the run (exit 2) with its message, reported once."""
        assert self.target is not None
        try:
            self.target.check_url(what, url, confirmed=self.settings.confirm_remote, confirm_hint=CONFIRM_HINT)
        except ConfigError as exc:
            if self.error is None:
                self.fail(str(exc))
            return False
        return True

    def _provision_count(self) -> int:
        """Users for this process: -u (or the profile's peak) spread over the workers, plus one spare group."""
        size = self.settings.group_size
        wanted = self.settings.provision_users
        if wanted is None:
            options = self.environment.parsed_options
            peak = int(getattr(options, "num_users", 0) or 0)
            profile = _profile(self.environment)
            if profile is not None:
                peak = max(peak, profile.peak_users)
            workers = self.settings.workers_expected
            wanted = math.ceil(max(peak, 1) / workers)
        return (math.ceil(wanted / size) + 1) * size

    def stop(self) -> None:
        if self._expiry is not None:
            self._expiry.kill(block=False)
            self._expiry = None

    def quit(self) -> None:
        self.stop()
        path, self.provisioned_path = self.provisioned_path, None
        if path is None or self.target is None or self.credentials is None:
            return
        if self.settings.keep_users:
            log.info("harness scenarios: test users kept (HARNESS_KEEP_USERS=1): %s", path)
            return
        try:
            remove_users(self.target.supabase_url, path, len(self.credentials.users))
        except HarnessError as exc:  # best effort: `harness users cleanup --prefix loadtest` finishes the job
            log.warning("harness scenarios: %s", exc)

    def _expire_loop(self) -> None:
        while self.recorder is not None:
            gevent.sleep(EXPIRE_INTERVAL_S)
            self.recorder.expire()

    # ---- per user ----

    @functools.cached_property
    def _groups(self) -> list[tuple[str, str | None]]:
        """Read on the first user's start, after every init listener (the plugin's included) has run."""
        return weighted_groups(_profile(self.environment), self.settings.group)

    def role(self, number: int) -> Role | None:
        """What Locust user `number` of this process plays; None once the provisioned users run out."""
        assert self.credentials is not None
        assignment = assignment_for(self.credentials, self.worker_index, self.worker_count, number)
        if assignment is None:
            return None
        return Role(assignment, *self.viewer(number))

    def viewer(self, number: int) -> tuple[str, str | None]:
        """(user group, viewer country to claim) of user `number`: groups by the profile's weights, in turn."""
        groups = self._groups
        group, country = groups[number % len(groups)] if groups else ("", None)
        country = self.settings.viewer_country or country
        stand_in = os.environ.get(REFERENCE_STACK) == "1"
        if self.target is None or not (self.target.is_loopback() or stand_in):
            country = None  # a real CloudFront sets the header itself
        return group, country

    def next_seq(self, sender: str) -> int:
        seq = self._seq.get(sender, 0) + 1
        self._seq[sender] = seq
        return seq

    def add_file(self, conversation: str, path: str, owner: str) -> None:
        self.files.setdefault(conversation, deque(maxlen=RECENT_FILES)).append((path, owner))


def resolve_target(host: str | None) -> TargetConfig:
    """--host wins (with the environment's keys, or the demo keys on loopback); else SUPABASE_URL."""
    if not host and not os.environ.get("SUPABASE_URL"):
        raise ConfigError(NO_TARGET)
    return load_target(supabase_url=host.rstrip("/") if host else None)


def _class_host(environment: Environment) -> str | None:
    """A worker group's host, which the harness plugin sets on the user classes (HARNESS_HOST)."""
    return next((c.host for c in environment.user_classes if getattr(c, "host", None)), None)


def _profile(environment: Environment) -> Profile | None:
    """The harness run's profile, which the harness plugin puts on the environment (None under plain Locust)."""
    profile = getattr(environment, ENVIRONMENT_ATTRIBUTE, None)
    return profile if isinstance(profile, Profile) else None


def weighted_groups(profile: Profile | None, only: str | None) -> list[tuple[str, str | None]]:
    """User groups by weight from the run's profile: [(name, country)], one entry per unit of weight; only `only`
    when this process plays one group (HARNESS_GROUP)."""
    if profile is None:
        return []
    if only and only in profile.groups:  # a worker group plays one user group (`harness china`)
        return [(only, profile.groups[only].country)]
    return [(name, g.country) for name, g in profile.groups.items() for _ in range(g.weight)]


# ---- installation ----

_states: weakref.WeakKeyDictionary[Environment, RunState] = weakref.WeakKeyDictionary()
_registered = False


def install(environment: Environment, settings: ScenarioSettings | None = None) -> RunState | None:
    """Attach the run state and its listeners to `environment` (once); None on a master, which runs no users."""
    if environment in _states:
        return _states[environment]
    if isinstance(environment.runner, MasterRunner):
        return None
    settings_error = None
    if settings is None:
        try:
            settings = ScenarioSettings.from_env()
        except ConfigError as exc:
            settings, settings_error = ScenarioSettings(), str(exc)
    state = _states[environment] = RunState(environment, settings)
    state.settings_error = settings_error
    ev = environment.events
    ev.test_start.add_listener(lambda **_: state.start())
    ev.test_stop.add_listener(lambda **_: state.stop())
    ev.quitting.add_listener(lambda **_: state.quit())
    return state


def state_of(environment: Environment) -> RunState | None:
    return _states.get(environment)


def register() -> None:
    """Install on every Locust environment this process creates (locustfiles call this at import)."""
    global _registered
    if _registered:
        return
    _registered = True

    @events.init.add_listener
    def _on_init(environment: Environment, **_: Any) -> None:
        install(environment)
