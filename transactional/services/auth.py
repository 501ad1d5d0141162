"""Identity: registration, login, rotating refresh tokens, logout, staff invitations.

These run in platform scope: looking a user up by email or token happens before anyone is
known, and each function checks what it needs itself."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from transactional.config import get_settings
from transactional.db import PLATFORM, session_scope
from transactional.errors import Conflict, Forbidden, NotFound, Unauthorized
from transactional.models import RefreshToken, RevokedAccessToken, Role, StaffInvitation, Tenant, User
from transactional.services.security import (
    Principal, digest, hash_password, issue_access_token, new_opaque_token, verify_password,
)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


def register_user(
    session: Session,
    *,
    password: str,
    email: str | None = None,
    phone: str | None = None,
    full_name: str | None = None,
    role: Role = Role.buyer,
    tenant_id: uuid.UUID | None = None,
    external_ref: str | None = None,
    password_hash: str | None = None,
) -> User:
    """`password_hash`, when given, is a hash of `password` made earlier: bulk loaders hash one
    shared password once instead of paying argon2 for every user."""
    user = User(
        email=email.lower() if email else None, phone=phone, full_name=full_name,
        password_hash=password_hash or hash_password(password), role=role, tenant_id=tenant_id,
        external_ref=external_ref,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict("a user with this email or phone already exists", field="email" if email else "phone") from exc
    return user


def _issue_pair(session: Session, user: User, family_id: uuid.UUID | None = None) -> TokenPair:
    access, expires_in = issue_access_token(user.id, user.role, user.tenant_id)
    refresh = new_opaque_token()
    session.add(
        RefreshToken(
            user_id=user.id, family_id=family_id or uuid.uuid4(), token_hash=digest(refresh),
            expires_at=datetime.now(UTC) + timedelta(days=get_settings().refresh_token_days),
        )
    )
    session.flush()
    return TokenPair(access, refresh, expires_in)


def login(session: Session, *, login: str, password: str) -> TokenPair:
    user = session.scalar(select(User).where(or_(User.email == login.lower(), User.phone == login)))
    # Verify against a dummy hash when the user is unknown so timing does not reveal accounts.
    known = user is not None and user.is_active
    if not verify_password(user.password_hash if known else _dummy_hash(), password) or not known:
        raise Unauthorized("wrong login or password", field="password")
    return _issue_pair(session, user)


def refresh(session: Session, refresh_token: str) -> TokenPair:
    """Rotate: the presented token is spent; presenting a spent token revokes its whole family."""
    now = datetime.now(UTC)
    stored = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == digest(refresh_token)))
    if stored is None or stored.expires_at < now:
        raise Unauthorized("invalid or expired refresh token", field="refresh_token")
    if stored.revoked_at is not None:
        # Its own transaction: the family stays revoked although this request fails.
        with session_scope(PLATFORM) as revoking:
            revoking.execute(
                update(RefreshToken)
                .where(RefreshToken.family_id == stored.family_id, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        raise Unauthorized("refresh token reuse detected; please log in again", field="refresh_token")
    user = session.get(User, stored.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("account disabled", field="refresh_token")
    pair = _issue_pair(session, user, stored.family_id)
    stored.revoked_at = now
    stored.replaced_by = session.scalar(select(RefreshToken.id).where(RefreshToken.token_hash == digest(pair.refresh_token)))
    session.flush()
    return pair


def logout(session: Session, principal: Principal, refresh_token: str | None) -> None:
    session.merge(RevokedAccessToken(jti=principal.jti, expires_at=principal.expires_at))
    query = update(RefreshToken).where(RefreshToken.user_id == principal.user_id, RefreshToken.revoked_at.is_(None))
    if refresh_token:
        family = session.scalar(select(RefreshToken.family_id).where(RefreshToken.token_hash == digest(refresh_token)))
        query = query.where(RefreshToken.family_id == family)
    session.execute(query.values(revoked_at=datetime.now(UTC)))
    session.flush()


def is_access_token_revoked(session: Session, jti: str) -> bool:
    return session.get(RevokedAccessToken, jti) is not None


def invite_staff(session: Session, *, tenant_id: uuid.UUID, email: str, invited_by: uuid.UUID) -> str:
    token = new_opaque_token()
    invitation = session.scalar(
        select(StaffInvitation).where(StaffInvitation.tenant_id == tenant_id, StaffInvitation.email == email.lower())
    )
    if invitation is not None and invitation.accepted_at is not None:
        raise Conflict("this email has already joined the store", field="email")
    if invitation is None:
        invitation = StaffInvitation(tenant_id=tenant_id, email=email.lower(), invited_by=invited_by,
                                     token_hash="", expires_at=datetime.now(UTC))
        session.add(invitation)
    invitation.token_hash = digest(token)
    invitation.expires_at = datetime.now(UTC) + timedelta(days=7)
    session.flush()
    return token


def accept_invitation(session: Session, *, token: str, password: str, full_name: str | None) -> User:
    invitation = session.scalar(
        select(StaffInvitation).where(StaffInvitation.token_hash == digest(token)).with_for_update()
    )
    if invitation is None or invitation.accepted_at is not None or invitation.expires_at < datetime.now(UTC):
        raise NotFound("invitation not found, already used or expired", field="token")
    tenant = session.get(Tenant, invitation.tenant_id)
    if tenant is None or tenant.status.value == "suspended":
        raise Forbidden("the inviting store is not active", field="token")
    user = register_user(session, email=invitation.email, password=password, full_name=full_name,
                         role=Role.seller_staff, tenant_id=invitation.tenant_id)
    invitation.accepted_at = datetime.now(UTC)
    session.flush()
    return user



@lru_cache
def _dummy_hash() -> str:
    return hash_password(new_opaque_token())
