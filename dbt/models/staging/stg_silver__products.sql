select
    product_id,
    tenant_id,
    title,
    brand,
    category_id,
    status,
    min_price,
    rating_avg,
    rating_count,
    deleted_at is not null as is_deleted,
    created_at,
    updated_at
from {{ source('silver', 'products') }}
where not _deleted
