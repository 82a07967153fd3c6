"""Time-ordered envelope ids and the row ids derived from them."""

from __future__ import annotations

import os

from intake_hub.ids import uuid7
from intake_hub.storage.batch import row_id
from intake_hub.testing import make_envelope


def test_ids_are_version_7_unique_and_ordered_by_millisecond() -> None:
    """Ids are RFC 9562 version 7, never repeat, and sort by creation time across ms."""
    ids = [uuid7() for _ in range(50_000)]
    assert len(set(ids)) == len(ids)
    assert all(i.version == 7 and i.variant == "specified in RFC 4122" for i in ids)
    prefixes = [i.int >> 80 for i in ids]
    assert prefixes == sorted(prefixes)


def test_a_forked_child_draws_different_ids() -> None:
    """A child process forked after ids were drawn does not repeat its parent's ids."""
    uuid7()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, uuid7().bytes)
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 16)
    assert child != uuid7().bytes


def test_row_ids_are_stable_distinct_and_keep_the_time_prefix() -> None:
    """Rows of one envelope get distinct ids that a redelivery recomputes, sorted like it."""
    env = make_envelope()
    roles = ["ticket", "customer", "reply", "event:created", "event:classified"]
    ids = [row_id(env, r) for r in roles]
    assert len({*ids, env.id}) == len(roles) + 1
    assert ids == [row_id(env, r) for r in roles]
    assert all(i.int >> 64 == env.id.int >> 64 for i in ids)
