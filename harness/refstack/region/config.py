"""Settings of one region server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.model import keys

Region = Literal["ap-southeast-1", "ap-northeast-1"]
REGIONS: tuple[str, ...] = ("ap-southeast-1", "ap-northeast-1")


@dataclass
class RegionConfig:
    region: str = "ap-southeast-1"
    role: Literal["primary", "replica"] = "primary"
    data_dir: Path | None = None
    """Where the region's PostgreSQL cluster lives (`<data_dir>/postgres`); None: a temporary one, removed at stop."""
    migrations_dir: Path | None = None
    """A Supabase migrations folder applied at start (each file once); None: the app's own, shipped with the harness."""
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 0
    """The cluster's TCP port; 0 picks a free one."""
    primary_postgres: str | None = None
    """A replica's source for its first base backup, as host:port; None: asked of the primary region (primary_url)."""
    synchronous_replica: bool = False
    """A primary waits for its replica to confirm each commit (synchronous_standby_names = '*'): RPO 0, slower
    writes."""
    statement_timeout_ms: int = 8000
    """Per request, as Supabase sets for the authenticated role."""
    pool_size: int = 16
    """Connections of the API pool (the admin pool has half)."""
    public_url: str | None = None
    """The URL clients use (for the token issuer); defaults to the bound address."""
    jwt_secret: str = keys.JWT_SECRET
    anon_key: str = keys.ANON_KEY
    service_role_key: str = keys.SERVICE_ROLE_KEY
    bcrypt_cost: int = 10
    """GoTrue's bcrypt cost (10: about 60 ms a hash, run off the event loop); tests use 4, bcrypt's minimum."""
    access_token_ttl_s: int = 3600
    """Lifetime of access tokens minted at sign-in and refresh (GoTrue's default is 3600)."""
    storage_file_size_limit_bytes: int = 50 * 1024 * 1024
    """Global upload limit (Supabase's default for free projects is 50 MB); larger uploads get EntityTooLarge."""
    primary_url: str | None = None
    """A replica follows this primary's change log (None: a replica that has not been pointed anywhere yet)."""
    forward_writes: bool = False
    """A replica passes client writes to its primary instead of refusing them (see forwarding.py)."""
    replication_lag_ms: float = 0.0
    """A replica applies WAL this much later (recovery_min_apply_delay), to make RPO measurable in drills."""
    anonymous_sign_ins: bool = False
    """GoTrue's GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED (off by default, as on Supabase): `POST /auth/v1/signup` with
    neither email nor phone signs in a new anonymous user; off, it answers 422 anonymous_provider_disabled."""
    livekit_url: str = "ws://127.0.0.1:7880"
    livekit_api_key: str = keys.LIVEKIT_API_KEY
    livekit_api_secret: str = keys.LIVEKIT_API_SECRET
    livekit_token_ttl_s: int = 6 * 3600
