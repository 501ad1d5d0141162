"""Stock per SKU per warehouse: adjustments, reservations with a time to live, low-stock events.

Stock never goes negative under concurrency: every decrement is a conditional UPDATE
(`available >= quantity`) that PostgreSQL re-checks under the row lock, never a read followed
by a write. A reservation moves units from `available` to `reserved`; committing it (the order
was paid) removes them from `reserved`; releasing it (payment failed, cancelled, expired) moves
them back to `available`.

These functions act within whatever row-level-security context the session carries: seller
endpoints call them in their tenant's scope, the checkout saga as the platform."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from transactional.config import get_settings
from transactional.db import PLATFORM, session_scope
from transactional.errors import Conflict, NotFound
from transactional.models import (
    InventoryLevel,
    OutboxEvent,
    Sku,
    StockAdjustment,
    StockReservation,
    Warehouse,
)
from transactional.observability import log

LOW_STOCK_EVENT = "inventory.low_stock"


class InsufficientStock(Conflict):
    def __init__(self, sku_id: uuid.UUID, requested: int) -> None:
        super().__init__(
            f"not enough stock of sku {sku_id} for {requested} unit(s)", field="items", sku_id=str(sku_id)
        )


@dataclass(frozen=True)
class ReservedUnits:
    inventory_level_id: uuid.UUID
    tenant_id: uuid.UUID
    quantity: int


def create_warehouse(
    session: Session, *, tenant_id: uuid.UUID, code: str, name: str, address: dict
) -> Warehouse:
    warehouse = Warehouse(tenant_id=tenant_id, code=code, name=name, address=address)
    session.add(warehouse)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"warehouse code '{code}' is taken", field="code") from exc
    return warehouse


def list_warehouses(session: Session) -> list[Warehouse]:
    return list(session.scalars(select(Warehouse).order_by(Warehouse.code)))


def list_levels(
    session: Session,
    *,
    sku_id: uuid.UUID | None = None,
    warehouse_id: uuid.UUID | None = None,
    low_stock_only: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[InventoryLevel]:
    query = select(InventoryLevel).order_by(InventoryLevel.sku_id, InventoryLevel.warehouse_id)
    if sku_id is not None:
        query = query.where(InventoryLevel.sku_id == sku_id)
    if warehouse_id is not None:
        query = query.where(InventoryLevel.warehouse_id == warehouse_id)
    if low_stock_only:
        below = (
            select(InventoryLevel.sku_id)
            .join(Sku, Sku.id == InventoryLevel.sku_id)
            .group_by(InventoryLevel.sku_id, Sku.low_stock_threshold)
            .having(func.sum(InventoryLevel.available) < Sku.low_stock_threshold)
        )
        query = query.where(InventoryLevel.sku_id.in_(below))
    return list(session.scalars(query.limit(limit).offset(offset)))


def list_adjustments(
    session: Session, *, sku_id: uuid.UUID | None = None, limit: int = 100, offset: int = 0
) -> list[tuple[StockAdjustment, InventoryLevel]]:
    query = (
        select(StockAdjustment, InventoryLevel)
        .join(InventoryLevel, InventoryLevel.id == StockAdjustment.inventory_level_id)
        .order_by(StockAdjustment.created_at.desc(), StockAdjustment.id)
    )
    if sku_id is not None:
        query = query.where(InventoryLevel.sku_id == sku_id)
    return [tuple(row) for row in session.execute(query.limit(limit).offset(offset))]


def _sku_stock(session: Session, sku_id: uuid.UUID) -> tuple[uuid.UUID, int, int]:
    """(tenant, low-stock threshold, units available over all warehouses) of a SKU."""
    row = session.execute(
        select(Sku.tenant_id, Sku.low_stock_threshold, func.coalesce(func.sum(InventoryLevel.available), 0))
        .outerjoin(InventoryLevel, InventoryLevel.sku_id == Sku.id)
        .where(Sku.id == sku_id)
        .group_by(Sku.id)
    ).one()
    return row[0], row[1], int(row[2])


def emit_low_stock_if_crossed(session: Session, sku_id: uuid.UUID, decrease: int) -> None:
    """Write an `inventory.low_stock` outbox event, in this transaction, when taking `decrease`
    units took the SKU's available stock from at or above its threshold to below it."""
    tenant_id, threshold, available_after = _sku_stock(session, sku_id)
    if available_after < threshold <= available_after + decrease:
        session.add(
            OutboxEvent(
                event_type=LOW_STOCK_EVENT,
                schema_version=1,
                tenant_id=tenant_id,
                aggregate_type="sku",
                aggregate_id=str(sku_id),
                payload={
                    "sku_id": str(sku_id),
                    "tenant_id": str(tenant_id),
                    "available": available_after,
                    "threshold": threshold,
                },
            )
        )
        session.flush()


def adjust_stock(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    sku_id: uuid.UUID,
    warehouse_id: uuid.UUID,
    delta: int,
    reason: str,
    actor_user_id: uuid.UUID | None,
) -> InventoryLevel:
    """Add or remove available units of a SKU in a warehouse, recording why."""
    if session.get(Sku, sku_id) is None:
        raise NotFound(f"sku {sku_id} not found", field="sku_id")
    if session.get(Warehouse, warehouse_id) is None:
        raise NotFound(f"warehouse {warehouse_id} not found", field="warehouse_id")
    session.execute(
        insert(InventoryLevel)
        .values(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            sku_id=sku_id,
            warehouse_id=warehouse_id,
            available=0,
            reserved=0,
        )
        .on_conflict_do_nothing(index_elements=[InventoryLevel.sku_id, InventoryLevel.warehouse_id])
    )
    level_id = session.execute(
        text(
            "UPDATE inventory_levels SET available = available + :delta, updated_at = now()"
            " WHERE sku_id = :sku AND warehouse_id = :warehouse AND available + :delta >= 0 RETURNING id"
        ),
        {"delta": delta, "sku": sku_id, "warehouse": warehouse_id},
    ).scalar()
    if level_id is None:
        raise Conflict("the adjustment would make available stock negative", field="delta")
    session.add(
        StockAdjustment(
            tenant_id=tenant_id,
            inventory_level_id=level_id,
            delta=delta,
            reason=reason,
            actor_user_id=actor_user_id,
        )
    )
    session.flush()
    if delta < 0:
        emit_low_stock_if_crossed(session, sku_id, -delta)
    level = session.get(InventoryLevel, level_id)
    session.refresh(level)
    return level


_FULLEST_LEVEL = text(
    "SELECT id, available FROM inventory_levels WHERE sku_id = :sku AND available > 0"
    " ORDER BY available DESC, id LIMIT 1"
)
_TAKE_FROM_LEVEL = text(
    "UPDATE inventory_levels SET available = available - :quantity, reserved = reserved + :quantity,"
    " updated_at = now() WHERE id = :level AND available >= :quantity RETURNING tenant_id"
)
# The common case in one round trip: one warehouse holds every unit asked for.
_TAKE_FROM_ONE_LEVEL = text(
    "UPDATE inventory_levels SET available = available - :quantity, reserved = reserved + :quantity,"
    " updated_at = now() WHERE available >= :quantity AND id = ("
    "SELECT id FROM inventory_levels WHERE sku_id = :sku AND available >= :quantity"
    " ORDER BY available DESC, id LIMIT 1) RETURNING id, tenant_id"
)


def _take_units(session: Session, sku_id: uuid.UUID, quantity: int) -> list[ReservedUnits]:
    """Move `quantity` units to reserved: from one warehouse when one has them all, otherwise
    from the fullest warehouses first."""
    whole = session.execute(_TAKE_FROM_ONE_LEVEL, {"sku": sku_id, "quantity": quantity}).one_or_none()
    if whole is not None:
        return [ReservedUnits(whole.id, whole.tenant_id, quantity)]
    taken: list[ReservedUnits] = []
    remaining = quantity
    while remaining:
        level = session.execute(_FULLEST_LEVEL, {"sku": sku_id}).one_or_none()
        if level is None:
            raise InsufficientStock(sku_id, quantity)
        take = min(level.available, remaining)
        tenant_id = session.execute(_TAKE_FROM_LEVEL, {"quantity": take, "level": level.id}).scalar()
        if tenant_id is None:
            continue  # a concurrent buyer took units between the look and the update: look again
        taken.append(ReservedUnits(level.id, tenant_id, take))
        remaining -= take
    return taken


def reserve(
    session: Session, needs: Mapping[uuid.UUID, int], *, order_id: uuid.UUID, ttl_seconds: int | None = None
) -> list[StockReservation]:
    """Reserve units of several SKUs for an order, all or nothing (InsufficientStock otherwise).

    SKUs are taken in id order so that concurrent multi-SKU reservations cannot deadlock."""
    release_expired_reservations(session, sku_ids=list(needs))
    ttl = ttl_seconds if ttl_seconds is not None else get_settings().reservation_ttl_seconds
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl)
    reservations = []
    for sku_id in sorted(needs):
        for units in _take_units(session, sku_id, needs[sku_id]):
            reservations.append(
                StockReservation(
                    tenant_id=units.tenant_id,
                    inventory_level_id=units.inventory_level_id,
                    sku_id=sku_id,
                    order_id=order_id,
                    quantity=units.quantity,
                    status="active",
                    expires_at=expires_at,
                )
            )
        emit_low_stock_if_crossed(session, sku_id, needs[sku_id])
    session.add_all(reservations)
    session.flush()
    return reservations


def reserved_units(session: Session, order_id: uuid.UUID) -> dict[uuid.UUID, int]:
    rows = session.execute(
        select(StockReservation.sku_id, func.sum(StockReservation.quantity))
        .where(StockReservation.order_id == order_id, StockReservation.status == "active")
        .group_by(StockReservation.sku_id)
    )
    return {sku_id: int(quantity) for sku_id, quantity in rows}


def shortfall(session: Session, order_id: uuid.UUID, needs: Mapping[uuid.UUID, int]) -> dict[uuid.UUID, int]:
    """Units of each SKU an order needs beyond what its active reservations hold."""
    held = reserved_units(session, order_id)
    return {
        sku: quantity - held.get(sku, 0) for sku, quantity in needs.items() if quantity > held.get(sku, 0)
    }


def ensure_reserved(session: Session, order_id: uuid.UUID, needs: Mapping[uuid.UUID, int]) -> None:
    """Top up an order's active reservations to `needs` (after some expired or were released)."""
    missing = shortfall(session, order_id, needs)
    if missing:
        reserve(session, missing, order_id=order_id)


# Both statements settle reservations and the level counters in one statement, so a reservation
# is settled exactly once even when two settlers race (the second finds it no longer active).
_SETTLE = """
WITH settled AS (
    UPDATE stock_reservations SET status = :to_status
    WHERE status = 'active' AND {condition}
    RETURNING inventory_level_id, quantity
), per_level AS (
    SELECT inventory_level_id, sum(quantity) AS quantity FROM settled GROUP BY inventory_level_id
), counters AS (
    UPDATE inventory_levels l
    SET reserved = l.reserved - p.quantity, available = l.available + {back_to_available}, updated_at = now()
    FROM per_level p WHERE l.id = p.inventory_level_id
    RETURNING l.id
)
SELECT count(*) FROM settled
"""


# Level rows are locked first in the order reservations take them (SKU, then level), so settling
# and reserving concurrently cannot deadlock; finding nothing to lock also skips the update.
_LOCK_LEVELS = """
SELECT id FROM inventory_levels WHERE id IN (
    SELECT inventory_level_id FROM stock_reservations WHERE status = 'active' AND {condition}
) ORDER BY sku_id, id FOR UPDATE
"""


def _settle(session: Session, *, to_status: str, condition: str, params: dict) -> int:
    if not session.execute(text(_LOCK_LEVELS.format(condition=condition)), params).first():
        return 0
    back = "p.quantity" if to_status == "released" else "0"
    statement = text(_SETTLE.format(condition=condition, back_to_available=back))
    return session.execute(statement, {"to_status": to_status, **params}).scalar()


def _order_condition(tenant_id: uuid.UUID | None) -> tuple[str, dict]:
    if tenant_id is None:
        return "order_id = :order", {}
    return "order_id = :order AND tenant_id = :tenant", {"tenant": tenant_id}


def commit_reservations(session: Session, order_id: uuid.UUID) -> int:
    """The order was paid: its reserved units leave stock for good."""
    return _settle(session, to_status="committed", condition="order_id = :order", params={"order": order_id})


def release_reservations(session: Session, order_id: uuid.UUID, tenant_id: uuid.UUID | None = None) -> int:
    """Return an order's (or one seller's share of an order's) reserved units to available."""
    condition, params = _order_condition(tenant_id)
    return _settle(session, to_status="released", condition=condition, params={"order": order_id, **params})


def release_expired_reservations(session: Session, sku_ids: Iterable[uuid.UUID] | None = None) -> int:
    """Release every reservation past its expiry (of the given SKUs only, when given)."""
    if sku_ids is None:
        return _settle(session, to_status="released", condition="expires_at < now()", params={})
    return _settle(
        session,
        to_status="released",
        condition="expires_at < now() AND sku_id = ANY(:skus)",
        params={"skus": list(sku_ids)},
    )


def restock_order(
    session: Session,
    order_id: uuid.UUID,
    tenant_id: uuid.UUID,
    *,
    reason: str,
    actor_user_id: uuid.UUID | None,
) -> None:
    """Put the committed units of one seller's share of an order back on sale (it was cancelled)."""
    committed = session.execute(
        select(StockReservation.inventory_level_id, func.sum(StockReservation.quantity))
        .where(
            StockReservation.order_id == order_id,
            StockReservation.tenant_id == tenant_id,
            StockReservation.status == "committed",
        )
        .group_by(StockReservation.sku_id, StockReservation.inventory_level_id)
        .order_by(StockReservation.sku_id, StockReservation.inventory_level_id)  # the order reserve locks in
    ).all()
    for level_id, quantity in committed:
        session.execute(
            text(
                "UPDATE inventory_levels SET available = available + :quantity, updated_at = now()"
                " WHERE id = :level"
            ),
            {"quantity": int(quantity), "level": level_id},
        )
        session.add(
            StockAdjustment(
                tenant_id=tenant_id,
                inventory_level_id=level_id,
                delta=int(quantity),
                reason=reason,
                actor_user_id=actor_user_id,
            )
        )
    session.flush()


def release_expired_now() -> int:
    with session_scope(PLATFORM) as session:
        return release_expired_reservations(session)


async def release_expired_periodically(interval_seconds: float) -> None:
    """Background loop of the API process; a failed round is logged and the next one retries."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            released = await asyncio.to_thread(release_expired_now)
        except Exception:  # the loop must outlive a database hiccup
            log.exception("releasing expired reservations failed")
            continue
        if released:
            log.info("released expired reservations", count=released)
