"""Configuration from TENANTRY_* environment variables (or a `.env` file)."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TENANTRY_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./tenantry.db"
    redis_url: str | None = None
    secret_key: str | None = None
    data_dir: Path = Path(".")
    base_url: str = "http://127.0.0.1:8000"
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "tenantry@localhost"
    # Shift the server's clock (seconds, may be negative): for rehearsing trials and statements.
    # Within a century either way: a clock no date can hold would answer every request 500.
    clock_offset_seconds: float = Field(
        default=0.0, ge=-100 * 366 * 86400, le=100 * 366 * 86400, allow_inf_nan=False
    )
    # Requests per second per client (all its keys and sessions) before `rate_limited` (SPEC §8: 5).
    api_burst_per_second: int = Field(default=5, ge=1)
    # Logs: `console` (key=value text) or `json` (one object per line), and the lowest level written.
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # A request body larger than this is refused with 413 before it is read further (SPEC §12).
    max_body_bytes: int = Field(default=6 * 1024 * 1024, ge=1024)
    # Database connections per process: `db_pool_size` kept open, up to `db_max_overflow` more
    # under load. With several processes the total is processes x (pool size + overflow).
    db_pool_size: int = Field(default=10, ge=1, le=1000)
    db_max_overflow: int = Field(default=10, ge=0, le=1000)
    # How long a request waits for a free connection, for a PostgreSQL connection to open, and for a
    # lock (SQLite's write lock, PostgreSQL row locks) before it answers 503 `database_unavailable`.
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    db_connect_timeout_seconds: int = Field(default=3, ge=1, le=300)
    # A millisecond at least: PostgreSQL and SQLite count it in milliseconds, and 0 is "for ever" there.
    db_lock_timeout_seconds: float = Field(default=5.0, ge=0.001, le=300)
    # Requests served at once by one process (default: half the connection pool, so that no request
    # ever waits for a connection held by another that waits for it); the others queue, and one
    # that waits longer than `request_queue_timeout_seconds` is answered 503 `overloaded`.
    max_concurrent_requests: int | None = Field(default=None, ge=1, le=10_000)
    request_queue_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # A request still unanswered after this long is taken for lost (a crashed process): its
    # Idempotency-Key may be used again.
    request_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)

    # Comma-separated addresses or CIDRs of the reverse proxies whose X-Forwarded-For is believed
    # (see auth.addresses). Empty: the client address is always the connection's.
    trusted_proxies: str = ""

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        # Only what the product runs on: a SQLite file, or PostgreSQL through psycopg 3.
        if value.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            _check_server_address(value)
            return value
        if value.startswith("sqlite:///") and value not in ("sqlite:///", "sqlite:///:memory:"):
            return value
        raise ValueError(
            "a SQLite file (sqlite:///./tenantry.db) or a PostgreSQL database (postgresql://user@host/db)"
        )

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or value.startswith("unix://"):
            return value
        if value.startswith(("redis://", "rediss://")):
            _check_port(value, "a Redis URL whose host and port can be read (redis://host:6379/0)")
            return value
        raise ValueError("a Redis URL: redis://host:port/db")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        # The address links in e-mails and the operator's host for custom domains are built from.
        wanted = "an http or https address with a host name (https://tenantry.example.com)"
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - reading it checks it
        except ValueError:
            raise ValueError(wanted) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(wanted)
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: str) -> str:
        _networks(value)
        return value

    @cached_property
    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return _networks(self.trusted_proxies)

    # Private destinations opened on purpose to data sources and webhooks: comma-separated CIDRs
    # or host names (see tenantry.outbound). Empty: only public addresses are reachable.
    outbound_allow: str = ""
    # Jobs one worker runs at once (refreshes, webhook POSTs, e-mails).
    worker_concurrency: int = Field(default=8, ge=1, le=256)

    @field_validator("outbound_allow")
    @classmethod
    def _allow_list(cls, value: str) -> str:
        from tenantry.outbound import AllowList

        AllowList.parse(value)  # a bad entry is a ValueError naming it
        return value

    # Secrets of data sources are sealed with this key (urlsafe base64 of 32 bytes; generated and
    # kept in the data folder as `encryption.key` when unset). Older keys, comma-separated, still
    # open what they sealed until `tenantry secrets rotate` (see tenantry.vault).
    encryption_key: str | None = None
    encryption_old_keys: str = ""

    @field_validator("encryption_key", "encryption_old_keys")
    @classmethod
    def _keys_are_keys(cls, value: str | None) -> str | None:
        from tenantry.vault import parse_key

        for item in (value or "").split(","):
            if item.strip():
                parse_key(item)  # a bad key is a ValueError saying what a key looks like
        return value

    # With Redis: how often each process writes the API calls it counted to the database.
    meter_flush_seconds: float = Field(default=1.0, gt=0, le=60)
    # How long each process keeps its copy of the partners' verified domains before reading them
    # again: a domain verified or removed elsewhere serves (or stops serving) within this time.
    domain_cache_seconds: float = Field(default=5.0, ge=0, le=300)

    @property
    def sqlalchemy_url(self) -> str:
        """A plain `postgresql://` URL selects psycopg 3."""
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def shown_database_url(self) -> str:
        """The database URL as it may be printed or logged: its password hidden, however it is
        written (with a `/` in it, which the driver still reads, or as libpq's `?password=`)."""
        url = make_url(self.database_url)
        hidden = {name: "***" for name in url.query if name.lower() == "password"}
        return (url.update_query_dict(hidden) if hidden else url).render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def clock_offset(self) -> timedelta:
        return timedelta(seconds=self.clock_offset_seconds)

    @property
    def secret_key_path(self) -> Path:
        """Where a generated secret key is kept when TENANTRY_SECRET_KEY is not set."""
        return self.data_dir / SECRET_KEY_FILE

    @cached_property
    def resolved_secret_key(self) -> str:
        """The configured secret, or the one kept in the data folder. Reading writes nothing: the
        file is made by `ensure_secret_key` (which `serve` and `create_app` call)."""
        if self.secret_key:
            return self.secret_key
        try:
            key = self.secret_key_path.read_text().strip()
        except FileNotFoundError:
            key = ""
        if not key:
            raise RuntimeError(
                f"no secret key: set TENANTRY_SECRET_KEY or let `tenantry serve` make {self.secret_key_path}"
            )
        return key

    def ensure_secret_key(self) -> str:
        """The secret key; without TENANTRY_SECRET_KEY, one is generated once and kept in the data
        folder, readable by its owner only. Of processes racing to create it, one wins and the
        others read its key."""
        if not self.secret_key and not self.secret_key_path.exists():
            create_key_file(self.secret_key_path, secrets.token_urlsafe(48))
        return self.resolved_secret_key


SECRET_KEY_FILE = ".tenantry-secret-key"


def create_key_file(path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written in full under another name, private from its creation, then linked into place: no
    # reader ever sees a half-written key, and an existing key is never replaced.
    draft = path.with_name(f"{path.name}.{secrets.token_hex(8)}")
    with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(key + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()


def _networks(value: str) -> tuple[IPv4Network | IPv6Network, ...]:
    networks = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            networks.append(ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or a CIDR such as 10.0.0.0/8") from None
    return tuple(networks)


def _check_server_address(url: str) -> None:
    """Refuse a PostgreSQL URL whose port is not a port (`:abc`, a `:` with none, an unclosed
    `[`): read later, it would fail with a traceback far from the setting that holds it."""
    try:
        port = make_url(url).port
    except ValueError:
        raise ValueError(
            "a PostgreSQL URL whose host and port can be read (postgresql://user@host:5432/db)"
        ) from None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"a port from 1 to 65535 (got {port})")


def _check_port(url: str, wanted: str) -> None:
    """The same for a URL of another kind (Redis's)."""
    try:
        port = urlsplit(url).port
    except ValueError:
        raise ValueError(wanted) from None
    if port == 0:
        raise ValueError(f"a port from 1 to 65535 (got {port})")
