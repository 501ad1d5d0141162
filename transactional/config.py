"""Settings shared by every stage: one place reads the environment (pydantic-settings)."""

from __future__ import annotations

import secrets
from functools import cached_property, lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARKETLAKE_", extra="ignore")

    env: str = Field("local", description="local | prod: selects resources across the platform")
    home: Path = Field(Path(".marketlake"), description="where embedded services keep their state")
    database_url: str | None = Field(
        None,
        validation_alias="DATABASE_URL",
        description="an external PostgreSQL; when unset the embedded server under MARKETLAKE_HOME is used",
    )
    pg_port: int = 54329
    jwt_secret: str | None = None
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    payment_webhook_secret: str = "marketlake-simulated-provider"
    reservation_ttl_seconds: int = 900
    # argon2id cost (RFC 9106 low-memory profile); the test suite lowers it to keep logins quick.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    log_level: str = "INFO"

    @property
    def home_dir(self) -> Path:
        path = self.home.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @cached_property
    def signing_secret(self) -> str:
        """The JWT secret: explicit in prod, otherwise generated once and kept under home (read once
        per process: every token check needs it)."""
        if self.jwt_secret:
            return self.jwt_secret
        if self.env == "prod":
            raise RuntimeError("MARKETLAKE_JWT_SECRET must be set when MARKETLAKE_ENV=prod")
        secret_file = self.home_dir / "jwt-secret"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(48))
            secret_file.chmod(0o600)
        return secret_file.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
