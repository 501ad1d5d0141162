"""User-item interactions imported from public data sets (MovieLens, retail logs, ...) for
training and evaluating models beside the marketplace's own events. Platform data: not
tenant-owned, readable and writable only in platform scope (migration 0006)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from transactional.models.base import Base


class ExternalDataset(Base):
    """One imported data set; `fingerprint` (sha256 of the source and options) makes a re-run a no-op."""

    __tablename__ = "external_datasets"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    format: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(500))
    rows: Mapped[int] = mapped_column(BigInteger)
    users: Mapped[int]
    items: Mapped[int]
    fingerprint: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime]


class ExternalInteraction(Base):
    __tablename__ = "external_interactions"
    __table_args__ = (Index("ix_external_interactions_dataset_user", "dataset", "user_ref", "position"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    dataset: Mapped[str] = mapped_column(ForeignKey("external_datasets.name", ondelete="CASCADE"))
    user_ref: Mapped[str] = mapped_column(String(128))
    item_ref: Mapped[str] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(doc="the interaction's rank in its user's history (by time, then file order)")
    occurred_at: Mapped[datetime | None]
    weight: Mapped[float | None]
