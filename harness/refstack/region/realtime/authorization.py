"""Private channels: what a caller may do on one, asked of PostgreSQL as that caller (Realtime Authorization).

    join (config.private) ──► realtime.channel_permissions(<topic without "realtime:">, claims)
                              (contract_realtime_authorization.sql: RLS on realtime.messages decides)
        broadcast read  no ──► the join is refused: "Unauthorized: You do not have permissions to read from
                               this Channel topic: <topic>"
        broadcast write no ──► the channel's broadcasts are dropped (an ack is still sent, as Realtime does)
        presence read   no ──► no presence_state / presence_diff on the channel
        presence write  no ──► its presence tracks are ignored

The same check runs again on a token refresh, and for each private message of the REST broadcast API (as the
caller of that request). Public channels never ask. A check that fails in the database (a policy raising, say) is
a refusal, as Realtime's RlsPolicyError; one that cannot write its probe rows (a hot standby) is
UnableToSetPolicies.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg

from harness.refstack.region.database import Database

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 5.0
"""Bound on one check (a policy may run any query)."""
_CHECK = "select realtime.channel_permissions($1, $2::jsonb)::text"


@dataclass(frozen=True)
class Permissions:
    broadcast_read: bool = False
    broadcast_write: bool = False
    presence_read: bool = False
    presence_write: bool = False


class Refused(Exception):
    """The caller may not join (or keep) the channel; `reason` is the join reply's `<Code>: <message>`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def message(self) -> str:
        """The reason without its code (what a shutdown's system message carries)."""
        return self.reason.partition(": ")[2]


def unauthorized(topic: str) -> Refused:
    return Refused(f"Unauthorized: You do not have permissions to read from this Channel topic: {topic}")


async def permissions(db: Database, topic: str, claims: dict[str, Any]) -> Permissions:
    """What `claims` may do on private `topic` (without "realtime:"); Refused when the check cannot be made."""
    try:
        answer = await db.admin.fetchval(_CHECK, topic, json.dumps(claims), timeout=CHECK_TIMEOUT_S)
    except asyncpg.ReadOnlySQLTransactionError:
        raise Refused(
            "UnableToSetPolicies: private channels are authorised on the primary database (the check writes to "
            "realtime.messages, which a read replica cannot); connect through the primary region"
        ) from None
    except asyncpg.PostgresError as exc:  # a policy failed: Realtime logs RlsPolicyError and refuses
        log.warning("realtime: policy check on %r failed: %s %s", topic[:128], exc.sqlstate, exc)
        raise unauthorized(topic) from None
    except (OSError, TimeoutError, asyncpg.InterfaceError) as exc:
        log.warning("realtime: policy check on %r could not reach the database: %r", topic[:128], exc)
        raise Refused("UnableToConnectToProject: Realtime was unable to connect to the project database") from None
    can = json.loads(answer)
    return Permissions(
        broadcast_read=bool(can["broadcast"]["read"]),
        broadcast_write=bool(can["broadcast"]["write"]),
        presence_read=bool(can["presence"]["read"]),
        presence_write=bool(can["presence"]["write"]),
    )


async def check_join(db: Database, topic: str, claims: dict[str, Any]) -> Permissions:
    """The permissions of a caller allowed to join private `topic`; Refused when broadcast reads are denied."""
    found = await permissions(db, topic, claims)
    if not found.broadcast_read:
        raise unauthorized(topic)
    return found
