"""Which provisioned user (and which conversations) each Locust user plays: a pure function of (worker index,
worker count, user number within the worker), so distributed workers agree without talking to each other.

The scheme. Users are laid out in *blocks* of `group_size` consecutive users (the last block may be shorter).
Every conversation lives inside one block: a group of the whole block, and one-to-one pairs around the block's ring
(slot i with slot i+1, the last with the first; a block of two has one pair, a block of one has none):

    users    0 1 2 3 | 4 5 6 7 | 8 9 10 11 | 12 13 14 15 | 16 17      (20 users would fill 5 blocks of 4)
    block       0    |    1    |     2     |      3      |   4
    worker   (2 workers) 0     1          0             1         0      block b → worker b mod W

Blocks go to workers round-robin (block b → worker b mod W), and a worker fills its blocks in order: user number
n on worker w plays slot n mod K of the worker's (n div K)-th block, i.e. global block w + (n div K)·W. So:
  - two different (worker, number) pairs never play the same user (blocks are disjoint, slots are distinct);
  - every member of every conversation a user belongs to is played by the same worker, by a number in the same
    run of K numbers — a worker running a multiple of K users has every conversation's members present, and the
    receiver side (`delivery.DeliveryTracker`) sees sender and recipients in one process;
  - a worker runs out (None) when its next block does not exist: capacity(w) = K · #blocks of w (less if it
    holds the short last block). Provision at least peak users + K · workers, so uneven spawning still fits.

Locust numbers users per worker with `SlotPool` (lowest free number first, so a user that stops frees its slot for
the next one spawned, and ramps up and down never exhaust the pool).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from harness.model.credentials import Conversation, ConversationKind, Credentials, User


@dataclass(frozen=True)
class Layout:
    """How `user_count` users are cut into blocks of `group_size` (the last block may be shorter)."""

    user_count: int
    group_size: int

    def __post_init__(self) -> None:
        if self.user_count < 0:
            raise ValueError(f"user_count must be >= 0, got {self.user_count}")
        if self.group_size < 2:
            raise ValueError(f"group_size must be >= 2 (a pair), got {self.group_size}")

    @property
    def block_count(self) -> int:
        return -(-self.user_count // self.group_size)

    def block(self, b: int) -> range:
        """User indices of block b."""
        start = b * self.group_size
        return range(start, min(start + self.group_size, self.user_count))

    def blocks(self) -> list[range]:
        return [self.block(b) for b in range(self.block_count)]


def block_conversations(size: int) -> list[tuple[ConversationKind, tuple[int, ...]]]:
    """Conversations of a block of `size` users, as (kind, slots): ring pairs, then the group (if size >= 3)."""
    if size < 2:
        return []
    if size == 2:
        return [("pair", (0, 1))]
    pairs: list[tuple[ConversationKind, tuple[int, ...]]] = [("pair", (i, (i + 1) % size)) for i in range(size)]
    return [*pairs, ("group", tuple(range(size)))]


def _check(worker_index: int, worker_count: int) -> None:
    if worker_count < 1:
        raise ValueError(f"worker_count must be >= 1, got {worker_count}")
    if not 0 <= worker_index < worker_count:
        raise ValueError(f"worker_index must be in [0, {worker_count}), got {worker_index}")


def assign(layout: Layout, worker_index: int, worker_count: int, number: int) -> int | None:
    """The user index played by user `number` (0-based) of worker `worker_index`; None once the worker runs out."""
    _check(worker_index, worker_count)
    if number < 0:
        raise ValueError(f"number must be >= 0, got {number}")
    k = layout.group_size
    block = worker_index + (number // k) * worker_count
    if block >= layout.block_count:
        return None
    user = block * k + number % k
    return user if user < layout.user_count else None


def locate(layout: Layout, worker_count: int, user_index: int) -> tuple[int, int]:
    """The inverse of `assign`: (worker index, number) that plays `user_index`."""
    if not 0 <= user_index < layout.user_count:
        raise ValueError(f"user_index must be in [0, {layout.user_count}), got {user_index}")
    k = layout.group_size
    block = user_index // k
    return block % worker_count, (block // worker_count) * k + user_index % k


def capacity(layout: Layout, worker_index: int, worker_count: int) -> int:
    """How many users worker `worker_index` can play before `assign` returns None."""
    _check(worker_index, worker_count)
    return sum(len(layout.block(b)) for b in range(worker_index, layout.block_count, worker_count))


@dataclass(frozen=True)
class Assignment:
    """What one Locust user plays: a provisioned user and the conversations it may send to and receive from."""

    worker_index: int
    number: int
    user: User
    conversations: tuple[Conversation, ...]


def assignment_for(credentials: Credentials, worker_index: int, worker_count: int, number: int) -> Assignment | None:
    """`assign` over a credentials file's users; None once the worker has no users left."""
    index = assign(Layout(len(credentials.users), credentials.group_size), worker_index, worker_count, number)
    if index is None:
        return None
    user = credentials.users[index]
    return Assignment(worker_index, number, user, tuple(credentials.conversations_of(user.id)))


class SlotPool:
    """User numbers within one worker: `acquire` hands out the lowest free number, `release` returns one.

    Not thread-safe; under gevent a worker's greenlets never interleave inside these calls.
    """

    def __init__(self) -> None:
        self._next = 0
        self._free: list[int] = []

    def acquire(self) -> int:
        if self._free:
            return heapq.heappop(self._free)
        self._next += 1
        return self._next - 1

    def release(self, number: int) -> None:
        if not 0 <= number < self._next or number in self._free:
            raise ValueError(f"number {number} is not held (valid: one returned by acquire and not yet released)")
        heapq.heappush(self._free, number)

    @property
    def in_use(self) -> int:
        return self._next - len(self._free)
