select
    refund_id,
    payment_id,
    sub_order_id,
    tenant_id,
    buyer_id,
    amount,
    status,
    created_at,
    {{ utc_date('created_at') }} as refund_date
from {{ source('silver', 'refunds') }}
where not _deleted
