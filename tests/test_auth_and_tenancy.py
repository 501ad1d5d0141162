from datetime import datetime, timedelta

from tests.factories import PASSWORD, bearer, buyer, platform_admin, seller, staff
from transactional.services import security


def test_register_login_userinfo_refresh_rotation_and_logout(client):
    assert client.post("/v1/auth/register", json={"email": "a@b.example.com", "password": PASSWORD}).status_code == 201
    tokens = client.post("/v1/auth/login", json={"login": "a@b.example.com", "password": PASSWORD}).json()
    me = client.get("/v1/auth/userinfo", headers=bearer(tokens["access_token"])).json()
    assert me["email"] == "a@b.example.com" and me["role"] == "buyer"

    rotated = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200
    # The spent token is refused, and its reuse revokes the rotated one too.
    reuse = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert reuse.status_code == 401
    assert client.post("/v1/auth/refresh", json={"refresh_token": rotated.json()["refresh_token"]}).status_code == 401

    fresh = client.post("/v1/auth/login", json={"login": "a@b.example.com", "password": PASSWORD}).json()
    headers = bearer(fresh["access_token"])
    assert client.post("/v1/auth/logout", headers=headers, json={"refresh_token": fresh["refresh_token"]}).status_code == 204
    assert client.get("/v1/auth/userinfo", headers=headers).status_code == 401
    assert client.post("/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]}).status_code == 401


def test_phone_registration_and_password_is_argon2id(client, db):
    from sqlalchemy import text

    from transactional.db import owner_engine

    assert client.post("/v1/auth/register", json={"phone": "+15551234567", "password": PASSWORD}).status_code == 201
    assert client.post("/v1/auth/login", json={"login": "+15551234567", "password": PASSWORD}).status_code == 200
    with owner_engine().connect() as connection:
        stored = connection.execute(text("SELECT password_hash FROM users WHERE phone = '+15551234567'")).scalar()
    assert stored.startswith("$argon2id$")


def test_bad_input_is_problem_json_naming_the_field(client):
    response = client.post("/v1/auth/register", json={"email": "not-an-email", "password": "short"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    fields = {error["field"] for error in response.json()["errors"]}
    assert {"email", "password"} <= fields
    wrong = client.post("/v1/auth/login", json={"login": "nobody@x.example.com", "password": "whatever1"})
    assert wrong.status_code == 401 and wrong.json()["errors"][0]["field"] == "password"


def test_duplicate_email_is_409(client):
    body = {"email": "dup@b.example.com", "password": PASSWORD}
    assert client.post("/v1/auth/register", json=body).status_code == 201
    response = client.post("/v1/auth/register", json=body)
    assert response.status_code == 409 and response.json()["errors"][0]["field"] == "email"


def test_tenant_lifecycle_pending_kyc_active_suspend_reactivate(client):
    tenant_id, headers = seller(client, activate=False)
    assert client.get("/v1/tenant", headers=headers).json()["status"] == "pending"
    rejected = client.post("/v1/tenant/kyc", headers=headers, json={"tax_id": "TX-0000", "documents": {}})
    assert rejected.json()["status"] == "rejected", rejected.text
    assert client.get("/v1/tenant", headers=headers).status_code == 403

    tenant_id, headers = seller(client)
    assert client.get("/v1/tenant", headers=headers).json()["status"] == "active"
    admin = platform_admin(client)
    assert client.post(f"/v1/admin/tenants/{tenant_id}/suspend", headers=admin).json()["status"] == "suspended"
    assert client.get("/v1/tenant", headers=headers).status_code == 403
    assert client.post(f"/v1/admin/tenants/{tenant_id}/suspend", headers=admin).status_code == 409
    assert client.post(f"/v1/admin/tenants/{tenant_id}/reactivate", headers=admin).json()["status"] == "active"
    assert client.get("/v1/tenant", headers=headers).status_code == 200


def test_tenant_configuration_and_audit_log(client):
    _, headers = seller(client)
    response = client.patch(
        "/v1/tenant", headers=headers,
        json={"store_name": "Blue Shop", "tax_rate": "0.0825", "plan": "pro",
              "branding": {"logo_url": "https://cdn.example.com/logo.png", "primary_colour": "#112233"},
              "shipping": {"methods": ["standard", "express"], "flat_rate": "4.50"}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["store_name"] == "Blue Shop" and body["tax_rate"] == "0.0825" and body["rate_limit_per_minute"] == 1200
    assert client.patch("/v1/tenant", headers=headers, json={"branding": {"primary_colour": "blue"}}).status_code == 422
    audit = client.get("/v1/tenant/audit-log", headers=headers).json()
    change = next(entry for entry in audit if entry["entity_type"] == "tenant" and entry["action"] == "updated"
                  and "store_name" in entry["changes"])
    assert change["changes"]["store_name"]["new"] == "Blue Shop" and change["actor_scope"] == "tenant"


def test_staff_invitation_and_admin_only_actions(client):
    _, admin_headers = seller(client)
    staff_headers = staff(client, admin_headers)
    assert client.get("/v1/auth/userinfo", headers=staff_headers).json()["role"] == "seller_staff"
    assert client.get("/v1/tenant", headers=staff_headers).status_code == 200
    assert client.patch("/v1/tenant", headers=staff_headers, json={"store_name": "Nope"}).status_code == 403
    assert client.post("/v1/auth/invitations", headers=staff_headers, json={"email": "x@y.example.com"}).status_code == 403


def test_rate_limit_returns_429_with_retry_after(client, monkeypatch):
    from transactional.ratelimit import tenant_buckets
    from transactional.services.tenancy import PLAN_RATE_LIMITS

    _, headers = seller(client)
    monkeypatch.setattr(tenant_buckets, "_clock", lambda: 1_000.0)  # no refill while the test runs
    tenant_buckets.reset()
    first = client.get("/v1/tenant", headers=headers)
    limit = PLAN_RATE_LIMITS[first.json()["plan"]]
    assert first.headers["X-RateLimit-Limit"] == str(limit)
    assert int(first.headers["X-RateLimit-Remaining"]) == limit - 1
    for _ in range(limit - 1):
        client.get("/v1/tenant", headers=headers)
    limited = client.get("/v1/tenant", headers=headers)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1 and limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.json()["errors"][0]["field"] == "tenant"


def test_token_bucket_refills_at_the_plan_rate():
    from transactional.ratelimit import TokenBuckets

    now = [0.0]
    buckets = TokenBuckets(clock=lambda: now[0])
    assert all(buckets.take("t", 60).allowed for _ in range(60))
    denied = buckets.take("t", 60)
    assert not denied.allowed and denied.retry_after == 1
    now[0] += 1.0
    assert buckets.take("t", 60).allowed and not buckets.take("t", 60).allowed


def test_buyer_cannot_use_seller_or_admin_endpoints(client):
    headers = buyer(client)
    assert client.get("/v1/tenant", headers=headers).status_code == 403
    assert client.get("/v1/admin/tenants", headers=headers).status_code == 403
    assert client.get("/v1/admin/tenants").status_code == 401


def test_a_remembered_access_token_is_refused_once_expired(client, monkeypatch):
    client.post("/v1/auth/register", json={"email": "exp@b.example.com", "password": PASSWORD})
    token = client.post("/v1/auth/login", json={"login": "exp@b.example.com", "password": PASSWORD}).json()["access_token"]
    assert client.get("/v1/auth/userinfo", headers=bearer(token)).status_code == 200  # verified and remembered
    expires_at = security.decode_access_token(token).expires_at

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):
            return expires_at + timedelta(seconds=1)

    monkeypatch.setattr(security, "datetime", Later)
    refused = client.get("/v1/auth/userinfo", headers=bearer(token))
    assert refused.status_code == 401 and refused.json()["errors"][0]["field"] == "Authorization"
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    monkeypatch.undo()
    assert client.get("/v1/auth/userinfo", headers=bearer(forged)).status_code == 401
