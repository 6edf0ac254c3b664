"""The connector's connection pool limits, read once from the environment when its client is made.

| variable | default | |
|---|---|---|
| ``CONNECTOR_HTTP_MAX_CONNECTIONS`` | 512 | connections of the pool, every host together |
| ``CONNECTOR_HTTP_MAX_CONNECTIONS_PER_HOST`` | 256 | connections to one host (scheme, host and port) |
| ``CONNECTOR_HTTP_MAX_KEEPALIVE_CONNECTIONS`` | 64 | idle connections kept open for reuse |
| ``CONNECTOR_HTTP_KEEPALIVE_EXPIRY`` | 30 | seconds an idle connection is kept |

A call beyond a limit waits for a connection (within its own timeout). The per-host limit keeps
calls hanging on one slow API from taking the whole pool; both are far above what one worker
usually holds at once, so a slow upstream's calls run side by side instead of queueing.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class PoolSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONNECTOR_HTTP_", extra="ignore", frozen=True)

    max_connections: int = Field(512, ge=1, le=65536)
    max_connections_per_host: int = Field(256, ge=1, le=65536)
    max_keepalive_connections: int = Field(64, ge=0, le=65536)
    keepalive_expiry: float = Field(30.0, ge=0, le=3600)

    @model_validator(mode="after")
    def _per_host_within_the_pool(self) -> PoolSettings:
        if self.max_connections_per_host > self.max_connections:
            raise ValueError("CONNECTOR_HTTP_MAX_CONNECTIONS_PER_HOST exceeds CONNECTOR_HTTP_MAX_CONNECTIONS")
        return self
