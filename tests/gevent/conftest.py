"""gevent-patched tests (harness/clients): this directory runs in its own pytest process (scripts/test), because
patching must happen before anything imports socket, ssl or threading, and it would break the asyncio servers
the other tests run in threads. The reference stack runs as subprocesses, so nothing asyncio lives here.

    stack                 primary region + LiveKit stand-in, each its own process on an OS-chosen port (per module)
    events                a ListEvent collecting every request event a client fires
    wait_for(pred)        poll with a deadline (yields to other greenlets)
    new_user()            a confirmed user made with the admin API: (email, password)
    signed_in(events)     a SupabaseSession signed in as a new user
    conversation(a, b)    a conversation created by session `a` with `b` as a member
"""

from gevent import monkey

monkey.patch_all()

import itertools  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402

import gevent  # noqa: E402
import pytest  # noqa: E402

from harness.clients.events import ListEvent  # noqa: E402
from harness.clients.supabase.session import SupabaseSession  # noqa: E402
from harness.model import keys  # noqa: E402
from harness.refstack.stack import ReferenceStack, StackConfig, StackPorts  # noqa: E402

PASSWORD = "correct-horse-battery"
_emails = itertools.count(1)


@pytest.fixture(scope="module")
def stack() -> Iterator[ReferenceStack]:
    with ReferenceStack(StackConfig(ports=StackPorts.any(), pieces=("primary", "livekit"))) as running:
        yield running


@pytest.fixture
def events() -> ListEvent:
    return ListEvent()


@pytest.fixture
def new_user(stack: ReferenceStack) -> Callable[[], tuple[str, str]]:
    def make() -> tuple[str, str]:
        email = f"gevent-user{next(_emails)}@example.com"
        admin = SupabaseSession(stack.endpoints.primary_url, keys.ANON_KEY)
        admin.admin_create_user(keys.SERVICE_ROLE_KEY, email, PASSWORD).raise_for_error()
        admin.close()
        return email, PASSWORD

    return make


@pytest.fixture
def signed_in(
    stack: ReferenceStack, new_user: Callable[[], tuple[str, str]]
) -> Iterator[Callable[..., SupabaseSession]]:
    sessions: list[SupabaseSession] = []

    def make(request_event: ListEvent | None = None, **kwargs: object) -> SupabaseSession:
        email, password = new_user()
        session = SupabaseSession(stack.endpoints.primary_url, keys.ANON_KEY, request_event=request_event, **kwargs)  # type: ignore[arg-type]
        session.sign_in(email, password).raise_for_error()
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def conversation() -> Callable[..., str]:
    return make_conversation


def make_conversation(owner: SupabaseSession, *members: SupabaseSession) -> str:
    """A conversation created through REST by `owner`, with `members` added (as the app does)."""
    created = owner.insert("conversations", {"created_by": owner.user_id, "is_group": len(members) > 1})
    conversation_id = str(created.raise_for_error().body[0]["id"])
    rows = [{"conversation_id": conversation_id, "user_id": owner.user_id, "role": "owner"}]
    rows += [{"conversation_id": conversation_id, "user_id": m.user_id, "role": "member"} for m in members]
    # return=minimal: PostgreSQL checks RETURNING rows against the SELECT policy, which cannot see the owner's new
    # membership within the same statement (42501 with return=representation, on Supabase too).
    owner.insert("conversation_members", rows, returning=False).raise_for_error()
    return conversation_id


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0, interval_s: float = 0.02) -> bool:
    """Poll `predicate` until it is true or the deadline passes (gevent-friendly: sleeping yields)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        gevent.sleep(interval_s)
    return predicate()


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., bool]:
    return wait_for
