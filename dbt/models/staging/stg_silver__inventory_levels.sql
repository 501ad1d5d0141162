select
    inventory_id,
    tenant_id,
    sku_id,
    warehouse_id,
    available,
    reserved,
    updated_at
from {{ source('silver', 'inventory') }}
where not _deleted
