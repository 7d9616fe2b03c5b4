"""The open model on a worker: per `[arrival]` user class, a scheduler greenlet hands iteration slots to idle users.

    scheduler greenlet (one per open class)            users of that class (its pool, `max_users` over all workers)
    slot n due at time_of(n / share) ─► an idle user? ─► yes: wake it ─► started ─► one task ─► back to waiting
                                                      └► no:  dropped (k6's dropped_iterations)
    as time passes: the schedule's integral × share ─► target (per window)

Users of an open class have no think time: they block in their `wait_time` (and once right after `on_start`, so their
first task waits for a slot too) until the scheduler wakes them. A worker takes `share` = 1 / workers of every rate
(HARNESS_WORKERS_EXPECTED), as Locust spreads the pools evenly over the workers. An iteration is one task pick;
it completes when the user comes back to wait. Counts go to the worker's ResultBuilder per window (`record_arrival`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import deque
from collections.abc import Callable

import gevent
from gevent.event import Event
from locust import User
from locust.exception import StopUser
from locust.user.task import LOCUST_STATE_RUNNING, LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING

from harness.model.rates import RateSchedule
from harness.model.result import ResultBuilder

MAX_SLEEP_S = 0.25
"""Longest scheduler sleep: the target is booked at least this often, and a rate ramping up from 0 is noticed."""
_IN_ITERATION = "_harness_in_iteration"
"""User attribute: the user was handed a slot and has not come back to wait yet."""


class ArrivalGate:
    """One open class on one worker: the idle users, the scheduler greenlet and the counts."""

    def __init__(self, user_class: str, schedule: RateSchedule, share: float, builder: ResultBuilder) -> None:
        self.user_class = user_class
        self.schedule = schedule
        self.share = share
        self.builder = builder
        self._idle: deque[Event] = deque()
        self._greenlet: gevent.Greenlet | None = None
        self._t0 = 0.0
        self._booked = 0.0

    # ---- the users' side ----

    def wait(self, user: User) -> float:
        """Block until the scheduler hands this user a slot; the `wait_time` of every user of the class."""
        if getattr(user, _IN_ITERATION, False):
            self.builder.record_arrival(time.time(), self.user_class, completed=1)
            setattr(user, _IN_ITERATION, False)
        slot = Event()
        self._idle.append(slot)
        try:
            slot.wait()
        finally:
            if not slot.is_set():  # killed while idle (the run or a ramp-down stopped it)
                with contextlib.suppress(ValueError):
                    self._idle.remove(slot)
        setattr(user, _IN_ITERATION, True)
        return 0.0

    def first_wait(self, user: User) -> None:
        """Right after on_start: Locust runs the first task without waiting, so wait here, stoppable as in
        TaskSet.wait."""
        if user._state == LOCUST_STATE_STOPPING:
            raise StopUser()
        user._state = LOCUST_STATE_WAITING
        self.wait(user)
        if user._state == LOCUST_STATE_STOPPING:
            raise StopUser()
        user._state = LOCUST_STATE_RUNNING

    # ---- the scheduler ----

    def start(self, t0: float | None = None) -> None:
        if self._greenlet is not None:
            return
        self._t0 = self._booked = time.time() if t0 is None else t0
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is None:
            return
        self._greenlet.kill(block=True)
        self._greenlet = None
        self._book(time.time())

    def _run(self) -> None:
        emitted = 0
        while True:
            now = time.time()
            self._book(now)
            due = math.floor(self.share * self.schedule.count_at(now - self._t0) + 1e-9)
            while emitted < due:
                emitted += 1
                self._hand_off(now)
            nxt = self.schedule.time_of((emitted + 1) / self.share)
            left = MAX_SLEEP_S if nxt is None else self._t0 + nxt - time.time()
            gevent.sleep(min(MAX_SLEEP_S, max(0.0, left)))

    def _hand_off(self, now: float) -> None:
        while self._idle:
            slot = self._idle.popleft()
            if not slot.is_set():
                slot.set()
                self.builder.record_arrival(now, self.user_class, started=1)
                return
        self.builder.record_arrival(now, self.user_class, dropped=1)

    def _book(self, now: float) -> None:
        """The target from the last booking to `now`, split at window boundaries."""
        w = self.builder.window_s
        t = self._booked
        while t < now:
            boundary = (math.floor(t / w) + 1) * w
            if boundary <= t:  # t sits on a boundary that division rounded below
                boundary += w
            end = min(now, boundary)
            target = self.share * self.schedule.between(t - self._t0, end - self._t0)
            if target > 0:
                self.builder.record_arrival(t, self.user_class, target=target)
            t = end
        self._booked = max(self._booked, now)


def install_gate(cls: type[User], gate: ArrivalGate) -> None:
    """Makes `cls` an open-model class: its wait_time blocks for a slot, and so does the end of its on_start."""
    on_start: Callable[[User], None] = cls.on_start

    def open_on_start(user: User) -> None:
        on_start(user)
        gate.first_wait(user)

    def open_wait_time(user: User) -> float:
        return gate.wait(user)

    setattr(cls, "on_start", open_on_start)  # noqa: B010  (a class attribute: every user of the class)
    setattr(cls, "wait_time", open_wait_time)  # noqa: B010
