-- The lakehouse's own per-seller daily facts, kept to reconcile the marts against.
select
    tenant_id,
    date,
    orders,
    units,
    gross_revenue,
    commission,
    refunds,
    product_views,
    sessions
from {{ source('gold', 'seller_daily') }}
