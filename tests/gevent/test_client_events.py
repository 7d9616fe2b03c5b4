"""The one place clients report requests: Locust's stats see them, scripts can collect them, failures read well."""

from __future__ import annotations

from locust.env import Environment
from locust.stats import StatsError

from harness.clients.events import CallbackEvent, ListEvent, Reporter, RequestFailed, render_failure
from harness.clients.http import error_fields, redact
from harness.clients.supabase.session import SupabaseSession
from harness.model import keys
from harness.refstack.stack import ReferenceStack


def test_events_reach_locust_stats_through_the_environment(stack: ReferenceStack) -> None:
    env = Environment()
    env.create_local_runner()
    session = SupabaseSession(stack.endpoints.primary_url, keys.ANON_KEY, environment=env)
    assert session.select("profiles").ok
    assert session.sign_in("nobody@example.com", "whatever-password").error is not None
    select = env.stats.get("select profiles", "REST")
    assert select.num_requests == 1 and select.num_failures == 0
    sign_in = env.stats.get("sign-in", "AUTH")
    assert sign_in.num_failures == 1
    [error] = env.stats.errors.values()
    assert StatsError.parse_error(error.error) == 'AUTH sign-in: 400 invalid_credentials "Invalid login credentials"'
    assert env.runner is not None
    env.runner.quit()
    session.close()


def test_reporter_without_a_target_is_a_no_op_and_labels_context() -> None:
    Reporter().fire("REST", "select messages", 1.0)  # no Locust, no event: nothing happens, nothing raises
    seen: list[dict[str, object]] = []
    reporter = Reporter(request_event=CallbackEvent(lambda **kw: seen.append(kw)), user_class="Chatter", group="cn")
    reporter.fire("RT", "join broadcast", 2.5, context={"origin_region": "ap-northeast-1"})
    assert seen[0]["context"] == {"group": "cn", "user_class": "Chatter", "origin_region": "ap-northeast-1"}
    assert seen[0]["response_time"] == 2.5 and seen[0]["exception"] is None


def test_list_event_names_split_successes_and_failures() -> None:
    events = ListEvent()
    reporter = Reporter(request_event=events)
    reporter.fire("REST", "select messages", 1.0)
    reporter.fire("STORAGE", "upload", 1.0, exception=RequestFailed("STORAGE upload", 413, "EntityTooLarge", "big"))
    assert events.names() == ["REST select messages", "STORAGE upload"]
    assert events.names(failed=True) == ["STORAGE upload"]
    assert events.names(failed=False) == ["REST select messages"]


def test_failure_text_is_rendered_in_one_place() -> None:
    assert render_failure("REST insert messages", 409, "23505", "duplicate key") == (
        'REST insert messages: 409 23505 "duplicate key"'
    )
    assert render_failure("RT connection", 0, "lost", "") == "RT connection: lost"


def test_error_bodies_of_every_service_decode_to_code_and_message() -> None:
    assert error_fields(b'{"code":"invalid_credentials","message":"Invalid login credentials"}') == (
        "invalid_credentials",
        "Invalid login credentials",
    )
    assert error_fields(b'{"code":400,"error_code":"bad_jwt","msg":"bad"}') == ("bad_jwt", "bad")
    storage = b'{"statusCode":"404","code":"NoSuchKey","error":"not_found","message":"Object not found"}'
    assert error_fields(storage) == ("NoSuchKey", "Object not found")
    assert error_fields(b'{"error":"not a member"}') == ("", "not a member")
    assert error_fields(b'{"code":"not_found","msg":"requested room does not exist"}') == (
        "not_found",
        "requested room does not exist",
    )
    assert error_fields(b"invalid API key\n") == ("", "invalid API key")


def test_tokens_never_survive_into_failure_text() -> None:
    assert redact(f"bad token {keys.ANON_KEY} here") == "bad token <jwt> here"
    failure = RequestFailed("AUTH refresh", 400, "x", redact(f"echo {keys.SERVICE_ROLE_KEY}"))
    assert keys.SERVICE_ROLE_KEY not in str(failure)
