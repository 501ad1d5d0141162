select
    tenant_id,
    slug,
    store_name,
    status,
    kyc_status,
    plan,
    commission_rate,
    created_at
from {{ source('silver', 'tenants') }}
where not _deleted
