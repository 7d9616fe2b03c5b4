"""The canary user: a real signed-in user whose reads and writes tell whether users can use the product.

    ensure()  sign in as dr-canary@… (created with the service key on first use; its password is derived from
              the service key, so every monitor finds the same user and nothing is stored) and find or create its
              own conversation
    write()   insert one message through the public entry point (201 = users can write)
    read()    read its conversation's latest message (200 = users can read)

Everything goes through `base_url` (normally the public entry point), exactly as a user's client would.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

import httpx

from harness.clients.supabase.sync import SupabaseClient
from harness.dr.topology import Topology

CANARY_EMAIL = "dr-canary@harness.invalid"
CANARY_TITLE = "harness dr canary"


class CanaryFailed(Exception):
    """The canary could not sign in, read or write; the message says which call and the answer."""


def _password(service_key: str, email: str) -> str:
    return hmac.new(service_key.encode(), f"harness-dr-canary:{email}".encode(), hashlib.sha256).hexdigest()[:32]


def _check(resp: httpx.Response, want: int, what: str) -> httpx.Response:
    if resp.status_code != want:
        raise CanaryFailed(f"{what}: HTTP {resp.status_code} {resp.text[:160]}")
    return resp


class Canary:
    def __init__(self, topology: Topology, base_url: str | None = None, email: str = CANARY_EMAIL) -> None:
        self.topology = topology
        self.email = email
        self.client = SupabaseClient(base_url or topology.public_url, topology.anon_key.reveal(),
                                     timeout_s=topology.timeout_s)  # fmt: skip
        self.token: str | None = None
        self.user_id: str | None = None
        self.conversation_id: str | None = None
        self.sent = 0

    def close(self) -> None:
        self.client.close()

    def _sign_in(self) -> None:
        password = _password(self.topology.service_key.reveal(), self.email)
        resp = self.client.sign_in(self.email, password)
        if resp.status_code in (400, 401, 422):  # no such user yet: create it with the service key, then sign in
            admin = self.client.with_key(self.topology.service_key.reveal())
            created = admin.admin_create_user(self.email, password, {"purpose": "harness dr canary"})
            if created.status_code not in (200, 201, 422):
                _check(created, 200, "create the canary user")
            resp = self.client.sign_in(self.email, password)
        body = _check(resp, 200, "canary sign-in").json()
        self.token, self.user_id = body["access_token"], body["user"]["id"]

    def _find_conversation(self) -> None:
        names = self.client.names
        mine = [("created_by", f"eq.{self.user_id}"), ("title", f"eq.{CANARY_TITLE}")]
        found = self.client.select(names.conversations, columns="id", token=self.token, limit=1, filters=mine)
        rows = _check(found, 200, "find the canary conversation").json()
        if rows:
            self.conversation_id = str(rows[0]["id"])
            return
        created = self.client.insert(names.conversations, {"title": CANARY_TITLE, "created_by": self.user_id},
                                     token=self.token)  # fmt: skip
        self.conversation_id = str(_check(created, 201, "create the canary conversation").json()[0]["id"])
        member = {"conversation_id": self.conversation_id, "user_id": self.user_id}
        _check(self.client.insert(names.members, member, returning=False, token=self.token), 201, "join it")

    def ensure(self) -> None:
        """Signed in with a conversation; raises CanaryFailed (or an httpx error) when that is impossible now."""
        if self.token is None:
            self._sign_in()
        if self.conversation_id is None:
            self._find_conversation()

    def _retry_once_on_401(self, call: str) -> httpx.Response:
        self.ensure()
        resp = self._call(call)
        if resp.status_code == 401:  # expired or revoked (a new primary may not know an old session): sign in again
            self.token = None
            self.ensure()
            resp = self._call(call)
        return resp

    def _call(self, call: str) -> httpx.Response:
        names = self.client.names
        if call == "write":
            self.sent += 1
            row = {"conversation_id": self.conversation_id, "sender_id": self.user_id,
                   "client_msg_id": f"dr-canary-{uuid.uuid4().hex}", "content": f"dr canary {self.sent}"}  # fmt: skip
            return self.client.insert(names.messages, row, returning=False, token=self.token)
        return self.client.select(names.messages, columns="id", token=self.token, limit=1,
                                  filters=[("conversation_id", f"eq.{self.conversation_id}")])  # fmt: skip

    def write(self) -> None:
        _check(self._retry_once_on_401("write"), 201, "canary write")

    def read(self) -> None:
        _check(self._retry_once_on_401("read"), 200, "canary read")
