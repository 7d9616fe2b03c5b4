"""Places where a KeyboardInterrupt (a run's second Ctrl-C, harness/run/signals.py) must not land, and the interrupt
held until they are left.

    fork       Python runs its at-fork callbacks (logging's lock release, …) around every fork; an exception raised
               there is printed as "Exception ignored … Traceback" and dropped: the abort would be lost.
    holding()  starting a child (`Child`): raised inside `subprocess.Popen`, the interrupt would leave a child that
               nobody holds, so nobody stops it.

The signal handler asks `held()`; if so it calls `defer()` instead of raising, and the interrupt is raised on leaving
(`holding()` raises it itself; after a fork the handler is run again by `_thread.interrupt_main`).
"""

from __future__ import annotations

import _thread
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_state = threading.local()  # only the main thread takes signals; a count per thread keeps others out of it


def _depth() -> int:
    return int(getattr(_state, "depth", 0))


def held() -> bool:
    """True inside a fork or a `holding()` section of this thread."""
    return _depth() > 0


def defer() -> None:
    """Called by a signal handler instead of raising: the interrupt comes when the section is left."""
    _state.pending = True


def _enter() -> None:
    _state.depth = _depth() + 1


def _leave() -> bool:
    """Leaves a section; True when an interrupt was deferred in it and is now due."""
    _state.depth = max(0, _depth() - 1)
    if _state.depth == 0 and getattr(_state, "pending", False):
        _state.pending = False
        return True
    return False


def _after_fork_in_parent() -> None:
    if _leave():
        _thread.interrupt_main(signal.SIGINT)  # the handler runs again once the fork callbacks are done


def _after_fork_in_child() -> None:
    _state.depth = 0
    _state.pending = False


os.register_at_fork(before=_enter, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


@contextmanager
def holding() -> Iterator[None]:
    """Hold a deferred interrupt until the block is done; then raise it (KeyboardInterrupt) at its end."""
    _enter()
    try:
        yield
    finally:
        if _leave():
            raise KeyboardInterrupt
