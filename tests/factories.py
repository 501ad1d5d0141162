"""Builders for test actors, going through the public API like real users do."""

from __future__ import annotations

import itertools
import uuid

from transactional.db import PLATFORM, session_scope
from transactional.models import Role
from transactional.services.auth import register_user

_counter = itertools.count()
PASSWORD = "correct-horse-battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client, login_name: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/v1/auth/login", json={"login": login_name, "password": password})
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def seller(client, *, activate: bool = True, plan: str = "free") -> tuple[str, dict[str, str]]:
    """Register a store (and run KYC unless activate=False); returns (tenant_id, admin headers)."""
    n = next(_counter)
    email = f"admin{n}-{uuid.uuid4().hex[:6]}@store.example.com"
    response = client.post(
        "/v1/tenants",
        json={"slug": f"store-{n}-{uuid.uuid4().hex[:6]}", "legal_name": f"Store {n} Ltd",
              "store_name": f"Store {n}", "admin_email": email, "admin_password": PASSWORD, "plan": plan},
    )
    assert response.status_code == 201, response.text
    tenant_id = response.json()["tenant"]["id"]
    headers = login(client, email)
    if activate:
        kyc = client.post("/v1/tenant/kyc", headers=headers,
                          json={"tax_id": f"TX-{n}-123", "documents": {"identity": "passport-scan"}})
        assert kyc.json()["status"] == "active", kyc.text
    return tenant_id, headers


def buyer(client) -> dict[str, str]:
    email = f"buyer{next(_counter)}-{uuid.uuid4().hex[:6]}@shop.example.com"
    response = client.post("/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return login(client, email)


def platform_admin(client) -> dict[str, str]:
    email = f"ops{next(_counter)}-{uuid.uuid4().hex[:6]}@marketlake.example.com"
    with session_scope(PLATFORM) as session:
        register_user(session, email=email, password=PASSWORD, role=Role.platform_admin)
    return login(client, email)


def staff(client, admin_headers: dict[str, str]) -> dict[str, str]:
    email = f"staff{next(_counter)}-{uuid.uuid4().hex[:6]}@store.example.com"
    invite = client.post("/v1/auth/invitations", headers=admin_headers, json={"email": email})
    assert invite.status_code == 201, invite.text
    accepted = client.post("/v1/auth/invitations/accept",
                           json={"token": invite.json()["invitation_token"], "password": PASSWORD})
    assert accepted.status_code == 201, accepted.text
    return login(client, email)
