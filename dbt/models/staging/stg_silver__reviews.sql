select
    review_id,
    tenant_id,
    product_id,
    order_item_id,
    buyer_id,
    rating,
    moderation_status,
    created_at,
    {{ utc_date('created_at') }} as review_date
from {{ source('silver', 'reviews') }}
where not _deleted
