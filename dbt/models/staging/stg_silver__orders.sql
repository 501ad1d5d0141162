select
    order_id,
    buyer_id,
    status,
    currency,
    items_total,
    tax_total,
    shipping_total,
    grand_total,
    shipping_method,
    payment_method,
    shipping_country,
    placed_at,
    {{ utc_date('placed_at') }} as placed_date,
    updated_at
from {{ source('silver', 'orders') }}
where not _deleted
