"""Change data: the transactional outbox and the shopper event log.

Both carry `txid` (the writing transaction's id). A reader that only takes rows whose txid is
below the oldest transaction still running (`pg_snapshot_xmin`) and orders by (txid, id) never
skips a row that commits after a row with a higher id: see `transactional.services.change_feed`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Identity, Index, SmallInteger, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from transactional.models.base import Base, created_at


class Xid8(UserDefinedType):
    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "xid8"


class OutboxEvent(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_txid_id", "txid", "id"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True, server_default=text("gen_random_uuid()"))
    event_type: Mapped[str] = mapped_column(String(64))
    schema_version: Mapped[int] = mapped_column(SmallInteger, default=1)
    tenant_id: Mapped[uuid.UUID | None]
    aggregate_type: Mapped[str] = mapped_column(String(64))
    aggregate_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSONB)
    actor_user_id: Mapped[uuid.UUID | None]
    occurred_at: Mapped[datetime] = created_at()
    txid: Mapped[int] = mapped_column(Xid8, server_default=text("pg_current_xact_id()"))


class ShopperEvent(Base):
    __tablename__ = "shopper_events"
    __table_args__ = (Index("ix_shopper_events_txid_seq", "txid", "seq"),)
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity())
    event_type: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    anonymous_id: Mapped[str | None] = mapped_column(String(128))
    session_id: Mapped[str] = mapped_column(String(128))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = created_at()
    tenant_id: Mapped[uuid.UUID | None]
    product_id: Mapped[uuid.UUID | None]
    sku_id: Mapped[uuid.UUID | None]
    query: Mapped[str | None] = mapped_column(String(500))
    position: Mapped[int | None]
    quantity: Mapped[int | None]
    context: Mapped[dict] = mapped_column(JSONB, default=dict)
    txid: Mapped[int] = mapped_column(Xid8, server_default=text("pg_current_xact_id()"))
