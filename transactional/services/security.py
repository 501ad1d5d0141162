"""Password hashing (argon2id), JWT access tokens and opaque rotating refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from transactional.config import get_settings
from transactional.errors import Unauthorized
from transactional.models import Role

ALGORITHM = "HS256"
VERIFIED_TOKENS_KEPT = 10_000


@lru_cache
def _hasher() -> PasswordHasher:
    settings = get_settings()
    return PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib, parallelism=1)


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def digest(token: str) -> str:
    """Tokens are stored only as digests; a leaked table reveals no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    role: Role
    tenant_id: uuid.UUID | None
    jti: str
    expires_at: datetime


def issue_access_token(user_id: uuid.UUID, role: Role, tenant_id: uuid.UUID | None) -> tuple[str, int]:
    settings = get_settings()
    lifetime = timedelta(minutes=settings.access_token_minutes)
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "role": role.value,
        "tid": str(tenant_id) if tenant_id else None,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + lifetime,
        "typ": "access",
    }
    return jwt.encode(claims, settings.signing_secret, algorithm=ALGORITHM), int(lifetime.total_seconds())


def decode_access_token(token: str) -> Principal:
    """The token's principal; 401 when it is forged, malformed or expired. A verified token is
    remembered (what it says cannot change), so a client calling again is not verified again;
    its expiry is checked on every call."""
    principal = _verified_access_token(token, get_settings().signing_secret)
    if principal.expires_at <= datetime.now(UTC):
        raise Unauthorized("invalid or expired access token", field="Authorization")
    return principal


@lru_cache(maxsize=VERIFIED_TOKENS_KEPT)
def _verified_access_token(token: str, secret: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM])
        if claims.get("typ") != "access":
            raise jwt.InvalidTokenError("not an access token")
        return Principal(
            user_id=uuid.UUID(claims["sub"]),
            role=Role(claims["role"]),
            tenant_id=uuid.UUID(claims["tid"]) if claims.get("tid") else None,
            jti=claims["jti"],
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        raise Unauthorized("invalid or expired access token", field="Authorization") from exc
