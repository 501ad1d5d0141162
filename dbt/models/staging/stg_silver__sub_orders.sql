-- A seller's share of an order. A sale is a sub-order that was paid for and not cancelled:
-- PAYMENT_PENDING, PAYMENT_FAILED and CANCELLED ones never earned the seller anything.
select
    sub_order_id,
    order_id,
    tenant_id,
    buyer_id,
    status,
    status not in ('PAYMENT_PENDING', 'PAYMENT_FAILED', 'CANCELLED') as is_sale,
    status in ('RETURN_REQUESTED', 'REFUNDED') as is_returned,
    items_total,
    tax_total,
    shipping_total,
    commission,
    created_at,
    {{ utc_date('created_at') }} as order_date,
    updated_at
from {{ source('silver', 'sub_orders') }}
where not _deleted
