select
    sku_id,
    tenant_id,
    product_id,
    sku_code,
    price,
    currency,
    is_active,
    created_at
from {{ source('silver', 'skus') }}
where not _deleted
