from __future__ import annotations

import uuid

from fastapi import APIRouter, status
from pydantic import BaseModel, EmailStr, Field, model_validator

from transactional.api.deps import CurrentTenant, CurrentUser, PlatformSessionDep, SellerAdmin, SessionDep
from transactional.errors import NotFound
from transactional.models import Role, User
from transactional.services import auth

router = APIRouter(prefix="/v1/auth", tags=["auth"])

Password = Field(min_length=8, max_length=128)


class RegisterIn(BaseModel):
    email: EmailStr | None = None
    phone: str | None = Field(None, pattern=r"^\+?[0-9]{7,15}$")
    password: str = Password
    full_name: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def email_or_phone(self) -> RegisterIn:
        if not self.email and not self.phone:
            raise ValueError("give an email or a phone number")
        return self


class UserOut(BaseModel):
    id: uuid.UUID
    email: str | None
    phone: str | None
    full_name: str | None
    role: Role
    tenant_id: uuid.UUID | None


class LoginIn(BaseModel):
    login: str = Field(min_length=3, max_length=320, description="email or phone")
    password: str = Field(min_length=1, max_length=128)


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=10, max_length=200)


class LogoutIn(BaseModel):
    refresh_token: str | None = Field(None, max_length=200)


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


class InviteIn(BaseModel):
    email: EmailStr


class InviteOut(BaseModel):
    email: str
    invitation_token: str


class AcceptInviteIn(BaseModel):
    token: str = Field(min_length=10, max_length=200)
    password: str = Password
    full_name: str | None = Field(None, max_length=200)


def user_out(user: User) -> UserOut:
    return UserOut(id=user.id, email=user.email, phone=user.phone, full_name=user.full_name, role=user.role,
                   tenant_id=user.tenant_id)


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserOut, summary="Register a buyer")
def register(body: RegisterIn, session: PlatformSessionDep) -> UserOut:
    return user_out(auth.register_user(session, email=body.email, phone=body.phone, password=body.password,
                                       full_name=body.full_name))


@router.post("/login", response_model=TokenOut, responses={401: {"description": "wrong login or password"}})
def login(body: LoginIn, session: PlatformSessionDep) -> TokenOut:
    return TokenOut(**auth.login(session, login=body.login, password=body.password).__dict__)


@router.post("/refresh", response_model=TokenOut, summary="Rotate a refresh token")
def refresh(body: RefreshIn, session: PlatformSessionDep) -> TokenOut:
    return TokenOut(**auth.refresh(session, body.refresh_token).__dict__)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke the access token and refresh tokens")
def logout(body: LogoutIn, principal: CurrentUser, session: PlatformSessionDep) -> None:
    auth.logout(session, principal, body.refresh_token)


@router.get("/userinfo", response_model=UserOut)
def userinfo(principal: CurrentUser, session: SessionDep) -> UserOut:
    user = session.get(User, principal.user_id)
    if user is None:
        raise NotFound("user not found", field="sub")
    return user_out(user)


@router.post("/invitations", status_code=status.HTTP_201_CREATED, response_model=InviteOut,
             dependencies=[SellerAdmin], summary="A seller admin invites a staff member")
def invite(body: InviteIn, principal: CurrentUser, tenant: CurrentTenant, session: SessionDep) -> InviteOut:
    token = auth.invite_staff(session, tenant_id=tenant.id, email=body.email, invited_by=principal.user_id)
    return InviteOut(email=body.email, invitation_token=token)


@router.post("/invitations/accept", status_code=status.HTTP_201_CREATED, response_model=UserOut)
def accept_invitation(body: AcceptInviteIn, session: PlatformSessionDep) -> UserOut:
    return user_out(auth.accept_invitation(session, token=body.token, password=body.password,
                                           full_name=body.full_name))
