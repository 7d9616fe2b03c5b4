"""Where every protocol client reports a request: one `Reporter.fire`, as Locust's `contrib/postgres.py` does.

    SupabaseSession ─┐
    RealtimeClient  ─┼─► Reporter.fire(request_type, name, response_time, ...) ─► Locust `events.request`
    LiveKitClient   ─┘                                                          or any object with `.fire(**kw)`
                                                                                 or nothing (scripts)

The clients time their own calls and pass a stable `name` without ids (`REST select messages`), so Locust's stats
table has one row per operation. Failures carry a `RequestFailed` whose text is the row Locust groups failures by:
it names the operation, the status and the server's error code and message, never a token or a password.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol


class RequestEvent(Protocol):
    """Anything with Locust's `EventHook.fire` signature (keyword arguments only)."""

    def fire(self, **kwargs: Any) -> Any: ...


class RequestFailed(Exception):
    """One failed request, as a value: operation name, HTTP status (0 = no response), error code, message."""

    def __init__(self, name: str, status: int, code: str, message: str) -> None:
        self.name = name
        self.status = status
        self.code = code
        self.message = message
        super().__init__(render_failure(name, status, code, message))

    def __repr__(self) -> str:
        # Locust's error table shows repr(exception); make it the same readable line as str().
        return str(self)


def render_failure(name: str, status: int, code: str, message: str) -> str:
    """The one place a failure becomes text: `AUTH sign-in: 400 invalid_credentials "Invalid login credentials"`."""
    parts = [f"{name}:"]
    if status:
        parts.append(str(status))
    if code:
        parts.append(code)
    if message:
        parts.append(f'"{message}"')
    return " ".join(parts)


class ListEvent:
    """A request event that keeps every firing as a dict: for tests and scripts that run without Locust."""

    def __init__(self) -> None:
        self.fired: list[dict[str, Any]] = []

    def fire(self, **kwargs: Any) -> None:
        self.fired.append(kwargs)

    def names(self, *, failed: bool | None = None) -> list[str]:
        """`request_type name` of each firing, optionally only failures (True) or successes (False)."""
        return [
            f"{e['request_type']} {e['name']}"
            for e in self.fired
            if failed is None or (e["exception"] is not None) == failed
        ]


class CallbackEvent:
    """Fan a firing out to plain callables, for scripts that want to count or print without Locust."""

    def __init__(self, *callbacks: Callable[..., Any]) -> None:
        self.callbacks = list(callbacks)

    def fire(self, **kwargs: Any) -> None:
        for callback in self.callbacks:
            callback(**kwargs)


class Reporter:
    """Fires Locust-shaped `request` events with the run's labels (`group`, `user_class`) added to `context`.

    `request_event` wins over `environment` (a Locust Environment, whose `events.request` is used); with neither,
    firing is a no-op, so every client also works in a plain script.
    """

    def __init__(
        self,
        *,
        environment: Any = None,
        request_event: RequestEvent | None = None,
        user_class: str = "",
        group: str = "",
    ) -> None:
        if request_event is None and environment is not None:
            request_event = environment.events.request
        self.request_event = request_event
        self.user_class = user_class
        self.group = group

    @property
    def enabled(self) -> bool:
        return self.request_event is not None

    def fire(
        self,
        request_type: str,
        name: str,
        response_time_ms: float,
        *,
        response_length: int = 0,
        exception: BaseException | None = None,
        start_time: float | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        if self.request_event is None:
            return
        ctx = {"group": self.group, "user_class": self.user_class}
        if context:
            ctx.update(context)
        self.request_event.fire(
            request_type=request_type,
            name=name,
            response_time=response_time_ms,
            response_length=response_length,
            exception=exception,
            context=ctx,
            start_time=start_time if start_time is not None else time.time() - response_time_ms / 1000,
            url=None,
            response=None,
        )
