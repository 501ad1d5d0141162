select
    sku_id,
    tenant_id,
    product_id,
    sku_code,
    price,
    currency,
    -- the seller's: available stock below it is low
    low_stock_threshold,
    is_active,
    created_at
from {{ source('silver', 'skus') }}
where not _deleted
