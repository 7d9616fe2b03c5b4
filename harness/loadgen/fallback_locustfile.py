"""A light load, run with `--locustfile` to check a target's basics: health, sign-in and a REST read over
FastHttpUser.

Each user signs up once (the reference stack confirms at once), then loops over the three calls. It produces no
`message.delivery` or `meeting.join` samples, so the orchestrator turns those gates off when it runs this file
(the smoke checklist still proves both flows work). Paths, headers and bodies come from
`harness.clients.supabase.api` (pure: no httpx in this Locust process); the table names are the target's
(HARNESS_TABLE_*).
"""

from __future__ import annotations

import itertools
import os
import uuid

from locust import FastHttpUser, between, task

from harness.clients.supabase import api
from harness.loadgen.plugin import ProfileShape, current_profile  # noqa: F401  (wires the harness)
from harness.model.target_config import names_from_mapping
from harness.scenarios.viewer import viewer_headers

PASSWORD = "fallback-load-pass-1"
_user_numbers = itertools.count()


class FallbackUser(FastHttpUser):
    wait_time = between(0.2, 0.8)

    def on_start(self) -> None:
        profile = current_profile()
        groups = list(profile.groups.items()) if profile is not None else []
        self.user_group = ""
        self.country = None
        if groups:  # round-robin by weight: good enough for a light fallback load
            cycle = [name for name, g in groups for _ in range(max(g.weight, 0))] or [groups[0][0]]
            self.user_group = cycle[next(_user_numbers) % len(cycle)]
            self.country = dict(groups)[self.user_group].country
        self.anon_key = os.environ.get("SUPABASE_ANON_KEY", "")
        self.table = names_from_mapping(os.environ).conversations
        self.email = f"load-{uuid.uuid4().hex[:16]}@example.test"
        self.token = ""
        with self.client.post(
            api.SIGN_UP,
            json=api.sign_up_body(self.email, PASSWORD),
            headers=self._headers(),
            name="auth signup",
            catch_response=True,
        ) as response:
            if response.status_code == 200 and response.json().get("access_token"):
                self.token = response.json()["access_token"]
            else:
                response.failure(f"sign-up answered {response.status_code}")

    def context(self) -> dict[str, str]:
        return {"group": self.user_group, "user_class": type(self).__name__}

    def _headers(self, token: str | None = None) -> dict[str, str]:
        return {**api.key_headers(self.anon_key, token), **viewer_headers(self.country)}

    @task(2)
    def health(self) -> None:
        self.client.get(api.AUTH_SETTINGS, headers=self._headers(), name="auth settings")

    @task(1)
    def sign_in(self) -> None:
        with self.client.post(
            api.SIGN_IN,
            json=api.password_body(self.email, PASSWORD),
            headers=self._headers(),
            name="auth sign-in",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                self.token = response.json().get("access_token", self.token)
            else:
                response.failure(f"sign-in answered {response.status_code}")

    @task(4)
    def read_conversations(self) -> None:
        self.client.get(
            api.rest(self.table, api.select_params("id,title", limit=20)),
            headers=self._headers(self.token),
            name=f"REST select {self.table}",
        )
