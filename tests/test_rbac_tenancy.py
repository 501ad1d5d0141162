"""Role x endpoint matrix for identity and tenancy endpoints: who is allowed, who is denied."""

import pytest

from tests.factories import buyer, platform_admin, seller, staff

ROLES = ["anonymous", "buyer", "seller_admin", "seller_staff", "platform_admin"]
DENIED = {401, 403}

# (method, path, body, roles allowed)
MATRIX = [
    ("GET", "/v1/auth/userinfo", None, {"buyer", "seller_admin", "seller_staff", "platform_admin"}),
    ("GET", "/v1/tenant", None, {"seller_admin", "seller_staff"}),
    ("PATCH", "/v1/tenant", {"store_name": "Renamed"}, {"seller_admin"}),
    ("GET", "/v1/tenant/audit-log", None, {"seller_admin"}),
    ("POST", "/v1/auth/invitations", {"email": "new.staff@store.example.com"}, {"seller_admin"}),
    ("GET", "/v1/admin/tenants", None, {"platform_admin"}),
    ("POST", "/v1/admin/tenants/{other_tenant}/suspend", None, {"platform_admin"}),
    ("GET", "/v1/admin/audit-log", None, {"platform_admin"}),
]


@pytest.fixture
def actors(client):
    tenant_id, admin = seller(client)
    other_tenant, _ = seller(client)
    return {
        "anonymous": {},
        "buyer": buyer(client),
        "seller_admin": admin,
        "seller_staff": staff(client, admin),
        "platform_admin": platform_admin(client),
    }, {"tenant": tenant_id, "other_tenant": other_tenant}


@pytest.mark.parametrize(("method", "path", "body", "allowed"), MATRIX, ids=[f"{m} {p}" for m, p, *_ in MATRIX])
def test_role_matrix(client, actors, method, path, body, allowed):
    headers_by_role, ids = actors
    for role in ROLES:
        response = client.request(method, path.format(**ids), json=body, headers=headers_by_role[role])
        if role in allowed:
            assert response.status_code not in DENIED, (role, response.text)
        else:
            assert response.status_code in DENIED, (role, response.status_code, response.text)
