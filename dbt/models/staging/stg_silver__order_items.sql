select
    order_item_id,
    order_id,
    sub_order_id,
    tenant_id,
    buyer_id,
    product_id,
    sku_id,
    quantity,
    unit_price,
    quantity * unit_price as line_total,
    created_at
from {{ source('silver', 'order_items') }}
where not _deleted
