"""The transactional schema. Alembic migrations (never `create_all`) create it in a database."""

from transactional.models.base import Base
from transactional.models.catalog import Category, Product, ProductStatus, ProductVersion, Sku
from transactional.models.commerce import (
    Cart, CartItem, InventoryLevel, Order, OrderItem, OrderStatus, OrderStatusChange, Payment,
    PaymentStatus, PaymentWebhookEvent, Refund, Review, StockAdjustment, StockReservation, SubOrder,
    Warehouse,
)
from transactional.models.experiments import Experiment, ExperimentStatus, Surface
from transactional.models.external import ExternalDataset, ExternalInteraction
from transactional.models.feed import OutboxEvent, ShopperEvent
from transactional.models.tenancy import (
    AuditLog, Plan, RefreshToken, RevokedAccessToken, Role, StaffInvitation, Tenant, TenantStatus, User,
)

__all__ = [
    "AuditLog", "Base", "Cart", "CartItem", "Category", "Experiment", "ExperimentStatus", "ExternalDataset",
    "ExternalInteraction", "InventoryLevel", "Order", "OrderItem",
    "OrderStatus", "OrderStatusChange", "OutboxEvent", "Payment", "PaymentStatus", "PaymentWebhookEvent",
    "Plan", "Product", "ProductStatus", "ProductVersion", "RefreshToken", "Refund", "RevokedAccessToken",
    "Review", "Role", "ShopperEvent", "Sku", "StaffInvitation", "StockAdjustment", "StockReservation",
    "SubOrder", "Surface", "Tenant", "TenantStatus", "User", "Warehouse",
]
