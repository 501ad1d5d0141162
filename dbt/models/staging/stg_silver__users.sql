-- Roles and tenancy only: personal data stays in the transactional database.
select
    user_id,
    role,
    tenant_id,
    is_active,
    created_at
from {{ source('silver', 'users') }}
where not _deleted
