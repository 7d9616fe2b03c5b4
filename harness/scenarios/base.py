"""`AccountUser`: the abstract Locust user every signed-in scenario builds on (the locustfiles add the tasks).

on_start: run state ready? ─► slot number ─► role (test user, conversations, group, country)
          ─► SupabaseSession (labels: user class, group; viewer country header) ─► sign in
tasks:    `signed_in()` retries a failed sign-in (each attempt is a counted AUTH failure), else go on
on_stop:  close the session, free the slot for the next user spawned
"""

from __future__ import annotations

import logging
import random

from gevent import GreenletExit
from locust import User

from harness.clients.supabase.session import SupabaseSession
from harness.model.assign import Assignment
from harness.model.target_config import TargetConfig
from harness.scenarios.runstate import RunState, install, state_of
from harness.scenarios.viewer import viewer_headers

log = logging.getLogger(__name__)


def run_state(user: User) -> RunState:
    """The environment's run state, ready; else the user stops (the setup error was already reported)."""
    state = state_of(user.environment) or install(user.environment)
    if state is None or not state.ready:
        raise GreenletExit()  # ends this user quietly (StopUser would be logged with a traceback)
    return state


class AccountUser(User):
    """A Locust user playing one provisioned test user."""

    abstract = True
    needs_account = True
    """Tells the run state to provision (or load) test users for this class."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.number: int | None = None
        self.session: SupabaseSession | None = None
        self.user_group = ""
        self.country: str | None = None
        self.rng = random.Random()

    # ---- set up and tear down ----

    def on_start(self) -> None:
        state = self.harness_state = run_state(self)
        self.number = state.slots.acquire()
        role = state.role(self.number)
        if role is None:
            log.warning(
                "harness scenarios: no provisioned user left for Locust user %d on this worker; provision more "
                "(HARNESS_PROVISION_USERS or `harness users provision --count`)", self.number,
            )  # fmt: skip
            raise GreenletExit()
        self.assignment: Assignment = role.assignment
        self.user_group, self.country = role.group, role.country
        target = self.target
        self.session = SupabaseSession(
            target.supabase_url,
            target.anon_key.reveal(),
            environment=self.environment,
            user_class=type(self).__name__,
            group=self.user_group,
            headers=viewer_headers(self.country),
            names=target.names,
        )
        self.signed_in()

    def on_stop(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
        if self.number is not None:
            self.harness_state.slots.release(self.number)
            self.number = None

    # ---- helpers for tasks ----

    @property
    def target(self) -> TargetConfig:
        assert self.harness_state.target is not None
        return self.harness_state.target

    @property
    def user_id(self) -> str:
        return self.assignment.user.id

    def signed_in(self) -> bool:
        """True when the session holds a token; else one sign-in attempt (a wrong password is a counted failure)."""
        session = self.session
        if session is None:
            return False
        if session.access_token:
            return True
        user = self.assignment.user
        return session.sign_in(user.email, user.password).ok

    def conversation_ids(self) -> list[str]:
        return [c.id for c in self.assignment.conversations]
