"""A/B experiments on the serving surfaces (platform data; see migration 0010)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from transactional.models.base import Base, created_at, updated_at, uuid_pk


class Surface(enum.StrEnum):
    recommendations = "recommendations"
    search = "search"


class ExperimentStatus(enum.StrEnum):
    draft = "draft"
    running = "running"
    stopped = "stopped"


class Experiment(Base):
    """`variants` is a JSON list of {name, share, model_version, strategy}, in bucket order;
    it never changes once the experiment exists, so assignments stay stable."""

    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint("surface IN ('recommendations', 'search')", name="surface"),
        CheckConstraint("status IN ('draft', 'running', 'stopped')", name="status"),
        CheckConstraint("jsonb_typeof(variants) = 'array' AND jsonb_array_length(variants) >= 2",
                        name="variants"),
        Index("uq_experiments_running_surface", "surface", unique=True,
              postgresql_where=text("status = 'running'")),
    )
    id: Mapped[uuid.UUID] = uuid_pk()
    key: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="", server_default="")
    surface: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=ExperimentStatus.draft.value,
                                        server_default="draft")
    variants: Mapped[list] = mapped_column(JSONB)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    started_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
