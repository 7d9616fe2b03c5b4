"""Deterministic assignment: no collisions between (worker, number) pairs, full coverage, conversations kept whole
on one worker, and the SlotPool that numbers Locust users."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.model.assign import Layout, SlotPool, assign, assignment_for, block_conversations, capacity, locate
from harness.model.credentials import Conversation, Credentials, User

layouts = st.builds(Layout, st.integers(0, 300), st.integers(2, 9))
worker_counts = st.integers(1, 7)


def all_assigned(layout: Layout, workers: int) -> dict[tuple[int, int], int]:
    """(worker, number) → user, for every number up to one block past each worker's capacity."""
    out: dict[tuple[int, int], int] = {}
    for w in range(workers):
        for n in range(capacity(layout, w, workers) + layout.group_size + 1):
            user = assign(layout, w, workers, n)
            if user is not None:
                out[(w, n)] = user
    return out


@given(layouts, worker_counts)
def test_no_two_locust_users_play_the_same_user_and_every_user_is_played(layout: Layout, workers: int) -> None:
    assigned = all_assigned(layout, workers)
    assert len(set(assigned.values())) == len(assigned)  # injective
    assert set(assigned.values()) == set(range(layout.user_count))  # coverage


@given(layouts, worker_counts)
def test_numbers_below_capacity_are_assigned_and_beyond_are_not(layout: Layout, workers: int) -> None:
    for w in range(workers):
        cap = capacity(layout, w, workers)
        assert all(assign(layout, w, workers, n) is not None for n in range(cap))
        assert all(assign(layout, w, workers, n) is None for n in range(cap, cap + 2 * layout.group_size))


@given(layouts, worker_counts)
def test_locate_inverts_assign(layout: Layout, workers: int) -> None:
    for (w, n), user in all_assigned(layout, workers).items():
        assert locate(layout, workers, user) == (w, n)


@given(layouts, worker_counts)
def test_every_conversation_member_is_played_by_the_same_worker_in_the_same_block_of_numbers(
    layout: Layout, workers: int
) -> None:
    k = layout.group_size
    for b, block in enumerate(layout.blocks()):
        for _, slots in block_conversations(len(block)):
            places = [locate(layout, workers, block[s]) for s in slots]
            assert len({w for w, _ in places}) == 1
            assert len({n // k for _, n in places}) == 1
            assert places[0][0] == b % workers


@given(st.integers(1, 12))
def test_block_conversations_are_pairs_around_the_ring_and_one_group(size: int) -> None:
    conversations = block_conversations(size)
    pairs = [slots for kind, slots in conversations if kind == "pair"]
    groups = [slots for kind, slots in conversations if kind == "group"]
    assert all(len(p) == 2 and p[0] != p[1] for p in pairs)
    if size == 1:
        assert conversations == []
    elif size == 2:
        assert pairs == [(0, 1)] and groups == []
    else:
        assert groups == [tuple(range(size))]
        assert len(pairs) == size and all(sum(s in p for p in pairs) == 2 for s in range(size))


def test_worked_example_from_the_docstring() -> None:
    layout = Layout(18, 4)
    assert [assign(layout, 0, 2, n) for n in range(8)] == [0, 1, 2, 3, 8, 9, 10, 11]
    assert [assign(layout, 0, 2, n) for n in range(8, 12)] == [16, 17, None, None]
    assert [assign(layout, 1, 2, n) for n in range(9)] == [4, 5, 6, 7, 12, 13, 14, 15, None]
    assert capacity(layout, 0, 2) == 10 and capacity(layout, 1, 2) == 8


def test_bad_arguments() -> None:
    layout = Layout(8, 4)
    with pytest.raises(ValueError, match=r"worker_index must be in \[0, 2\), got 2"):
        assign(layout, 2, 2, 0)
    with pytest.raises(ValueError, match="worker_count must be >= 1"):
        assign(layout, 0, 0, 0)
    with pytest.raises(ValueError, match="number must be >= 0"):
        assign(layout, 0, 1, -1)
    with pytest.raises(ValueError, match=r"user_index must be in \[0, 8\)"):
        locate(layout, 1, 8)
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        Layout(8, 1)


def test_assignment_for_credentials() -> None:
    users = [User(i, f"u{i}", f"h.r.{i}@example.com", "pw") for i in range(6)]
    conversations = [
        Conversation("c-pair", "pair", ("u0", "u1"), 0),
        Conversation("c-group", "group", ("u0", "u1", "u2"), 0),
        Conversation("c-other", "pair", ("u3", "u4"), 1),
    ]
    credentials = Credentials("r", "h", "http://127.0.0.1:1", 3, users, conversations)
    first = assignment_for(credentials, 0, 2, 0)
    assert first is not None and first.user.id == "u0"
    assert [c.id for c in first.conversations] == ["c-pair", "c-group"]
    second_worker = assignment_for(credentials, 1, 2, 0)
    assert second_worker is not None and second_worker.user.id == "u3"
    assert assignment_for(credentials, 1, 2, 3) is None


def test_slot_pool_reuses_the_lowest_free_number() -> None:
    pool = SlotPool()
    assert [pool.acquire() for _ in range(4)] == [0, 1, 2, 3]
    pool.release(2)
    pool.release(0)
    assert pool.in_use == 2
    assert pool.acquire() == 0 and pool.acquire() == 2 and pool.acquire() == 4
    with pytest.raises(ValueError, match="number 7 is not held"):
        pool.release(7)
    pool.release(1)
    with pytest.raises(ValueError, match="number 1 is not held"):
        pool.release(1)
