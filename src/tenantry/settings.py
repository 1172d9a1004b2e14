"""Configuration from TENANTRY_* environment variables (or a `.env` file)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TENANTRY_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./tenantry.db"
    redis_url: str | None = None
    secret_key: str | None = None
    data_dir: Path = Path(".")
    base_url: str = "http://127.0.0.1:8000"
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "tenantry@localhost"
    # Shift the server's clock (seconds, may be negative): for rehearsing trials and statements.
    clock_offset_seconds: float = 0.0
    # Requests per second per client (all its keys and sessions) before `rate_limited` (SPEC §8: 5).
    api_burst_per_second: int = Field(default=5, ge=1)
    # With Redis: how often each process writes the API calls it counted to the database.
    meter_flush_seconds: float = Field(default=1.0, gt=0, le=60)

    @property
    def sqlalchemy_url(self) -> str:
        """A plain `postgresql://` URL selects psycopg 3."""
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def clock_offset(self) -> timedelta:
        return timedelta(seconds=self.clock_offset_seconds)

    @cached_property
    def resolved_secret_key(self) -> str:
        """The configured secret, or one generated once and kept in the data folder."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / ".tenantry-secret-key"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key + "\n")
        path.chmod(0o600)
        return key
