"""Which PostgreSQL a backup reads from (or a restore writes to): a DSN, or a region server that says where its
database listens.

    --dsn postgresql://user[:password]@host:port/db   (or HARNESS_BACKUP_DSN)
    --region-url URL + SUPABASE_SERVICE_ROLE_KEY       GET URL/_admin/postgres ─► {"host", "port"}
                                                       ─► postgresql://supabase_admin@host:port/postgres

A password in the DSN is taken out of it and handed to the PostgreSQL programs as PGPASSWORD (an argument would
show in `ps`); `display()` never shows it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import asyncpg
import httpx

from harness.errors import ConfigError, TargetUnreachable
from harness.model.target_config import Secret

DSN_VARIABLE = "HARNESS_BACKUP_DSN"
SERVICE_KEY_VARIABLE = "SUPABASE_SERVICE_ROLE_KEY"
REGION_SUPERUSER = "supabase_admin"
"""The reference regions' PostgreSQL superuser (trust authentication on loopback)."""
_DSN_FORM = "postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE"


@dataclass(frozen=True)
class Dsn:
    host: str
    port: int
    user: str
    database: str
    password: Secret | None = None

    @classmethod
    def parse(cls, text: str, where: str = "--dsn") -> Dsn:
        parts = urlsplit(text.strip())
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise ConfigError(f"{where}: {_mask(text)!r} is not a PostgreSQL URL; give {_DSN_FORM}")
        try:
            port = parts.port or 5432
        except ValueError:
            raise ConfigError(f"{where}: the port of {_mask(text)!r} is not a number; give {_DSN_FORM}") from None
        database = unquote(parts.path.lstrip("/")) or "postgres"
        password = Secret(unquote(parts.password)) if parts.password else None
        return cls(parts.hostname, port, unquote(parts.username or REGION_SUPERUSER), database, password)

    def url(self) -> str:
        """The DSN without its password: what the programs get as --dbname."""
        return f"postgresql://{quote(self.user, safe='')}@{self.host}:{self.port}/{quote(self.database, safe='')}"

    def display(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.database}"

    def env(self) -> dict[str, str]:
        """Environment for pg_dump/pg_restore/psql: the password, if any, and UTC."""
        env = {**os.environ, "PGTZ": "UTC", "PGCONNECT_TIMEOUT": "10"}
        if self.password is not None:
            env["PGPASSWORD"] = self.password.reveal()
        return env

    def connect_kwargs(self) -> dict[str, object]:
        """asyncpg.connect(**kwargs)."""
        kwargs: dict[str, object] = {"host": self.host, "port": self.port, "user": self.user, "database": self.database}
        if self.password is not None:
            kwargs["password"] = self.password.reveal()
        return kwargs


def _mask(text: str) -> str:
    parts = urlsplit(text)
    if parts.password:
        return text.replace(f":{parts.password}@", ":***@", 1)
    return text


def region_dsn(region_url: str, service_key: str | None, timeout_s: float = 10.0) -> Dsn:
    """Ask a region server where its PostgreSQL listens (`GET /_admin/postgres`, service role)."""
    if not service_key:
        raise ConfigError(
            f"--region-url needs the service role key to ask {region_url} for its database: set {SERVICE_KEY_VARIABLE} "
            "(or give --dsn instead)"
        )
    url = region_url.rstrip("/") + "/_admin/postgres"
    headers = {"apikey": service_key, "Authorization": f"Bearer {service_key}"}
    try:
        response = httpx.get(url, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise TargetUnreachable(f"{url} did not answer ({exc}); is the region server running?") from None
    if response.status_code in (401, 403):
        raise ConfigError(f"{url} refused the service key ({response.status_code}): check {SERVICE_KEY_VARIABLE}")
    if response.status_code != 200:
        raise TargetUnreachable(f"{url} answered {response.status_code}: {response.text[:200]}")
    try:
        body = response.json()
        return Dsn(str(body["host"]), int(body["port"]), REGION_SUPERUSER, "postgres")
    except (ValueError, KeyError, TypeError):
        raise TargetUnreachable(f"{url} did not answer {{'host', 'port'}}: {response.text[:200]}") from None


def resolve(
    dsn: str | None, region_url: str | None, *, what: str, dsn_flag: str = "--dsn", region_flag: str = "--region-url"
) -> Dsn:
    """The DSN from `dsn_flag`, else `region_flag`, else HARNESS_BACKUP_DSN (for the source only)."""
    if dsn:
        return Dsn.parse(dsn, dsn_flag)
    if region_url:
        return region_dsn(region_url, os.environ.get(SERVICE_KEY_VARIABLE))
    if dsn_flag == "--dsn" and os.environ.get(DSN_VARIABLE):
        return Dsn.parse(os.environ[DSN_VARIABLE], DSN_VARIABLE)
    env = f" (or set {DSN_VARIABLE})" if dsn_flag == "--dsn" else ""
    raise ConfigError(
        f"no {what}: give {dsn_flag} {_DSN_FORM}{env}, or {region_flag} URL of a region server with "
        f"{SERVICE_KEY_VARIABLE} set"
    )


async def connect(dsn: Dsn) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(**dsn.connect_kwargs(), timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise TargetUnreachable(f"cannot connect to {dsn.display()}: {exc}") from None
