"""Users, roles, tenant grants and local passwords: the service behind `recon user` and sign-in.

Only admins (`Permission.MANAGE`) manage users, checked in the same transaction as the change.
The one exception is the bootstrap: while no active admin exists, an admin may be added without
an acting user (the operator with database access creates the first one). Every change that can
add or remove an active admin (the bootstrap, disabling, a role change) takes one transaction
lock before it counts the admins, so two bootstraps at once make one admin and the last active
admin can neither be disabled nor demoted, however the calls interleave.

Every change appends an audit entry naming the acting user to the chain of each tenant the user
is granted (the audit log is kept per tenant). A user with no grant yet leaves no entry until
their first grant, whose entry records their role. Passwords are Argon2id hashes (argon2-cffi
defaults, rehashed on sign-in when the defaults change); no result, error or audit entry ever
holds a password or a hash.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recon import audit
from recon.db.base import utcnow
from recon.db.models import Tenant, TenantGrant, User
from recon.db.tenancy import admin_session, bind_tenant
from recon.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
)
from recon.locks import transaction_lock
from recon.review.access import Actor, Permission, Role, load_actor, normalise_email, require_global
from recon.review.passwords import decoy_hash as _decoy_hash
from recon.review.passwords import hash_password as hash_password
from recon.review.passwords import needs_rehash
from recon.review.passwords import password_matches as _password_matches
from recon.tenants import get_tenant

if TYPE_CHECKING:
    from recon.review.identity import IdentityMapping
    from recon.settings import Settings

BOOTSTRAP_ACTOR = "bootstrap"
ADMINS_LOCK = "users:admins"
"""The transaction lock of every change that can add or remove an active admin (the bootstrap,
disabling, changing a role), so that no two of them decide on the same count of admins."""
SIGN_IN_REFUSED = (
    "the email or password is wrong, or this account cannot sign in with a password; "
    "check both or ask an admin"
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True)
class UserInfo:
    """A user as an admin sees them: never the password or its hash."""

    email: str
    display_name: str
    role: Role
    active: bool
    tenants: tuple[str, ...]
    created_at: dt.datetime
    last_login_at: dt.datetime | None
    password_set: bool


@dataclass(frozen=True)
class RoleChange:
    """A user after a role change, and the role they had before it."""

    user: UserInfo
    before: Role

    @property
    def changed(self) -> bool:
        """Whether the role is another one now (False: they had it already)."""
        return self.user.role is not self.before


# -- passwords -------------------------------------------------------------------------------------


# -- shared helpers --------------------------------------------------------------------------------


def checked_email(email: str) -> str:
    """`email` normalised to lower case, or a ConfigError when it is not an address."""
    wanted = normalise_email(email)
    if len(wanted) > 254 or not _EMAIL.match(wanted):
        raise ConfigError(f"{email.strip()!r} is not an email address")
    return wanted


def checked_role(role: Role | str) -> Role:
    """`role` as a Role, or a ConfigError naming the roles there are."""
    try:
        return Role(str(role).strip().lower())
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ConfigError(f"unknown role {role!r}; a role is one of {known}") from None


def find_user(session: Session, email: str) -> User | None:
    """The user row with `email` (any case), or None."""
    return session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


def _user(session: Session, email: str) -> User:
    user = find_user(session, email)
    if user is None:
        raise NotFoundError(
            f"there is no user {normalise_email(email)!r}; `recon user list` shows the users"
        )
    return user


def _tenant_ids(session: Session) -> list[str]:
    return list(session.scalars(select(Tenant.id).order_by(Tenant.id)))


def grants_by_user(session: Session, user_ids: Iterable[int] | None = None) -> dict[int, list[str]]:
    """user id -> granted tenant ids, read one tenant at a time (grants are under RLS)."""
    wanted = None if user_ids is None else set(user_ids)
    found: dict[int, list[str]] = {}
    for tenant_id in _tenant_ids(session):
        bind_tenant(session, tenant_id)
        query = select(TenantGrant.user_id).where(TenantGrant.tenant_id == tenant_id)
        if wanted is not None:
            query = query.where(TenantGrant.user_id.in_(wanted))
        for user_id in session.scalars(query):
            found.setdefault(user_id, []).append(tenant_id)
    return found


def _grant_row(session: Session, user_id: int, tenant_id: str) -> TenantGrant | None:
    bind_tenant(session, tenant_id)
    return session.scalar(
        select(TenantGrant).where(
            TenantGrant.tenant_id == tenant_id, TenantGrant.user_id == user_id
        )
    )


def _info(user: User, tenants: Sequence[str]) -> UserInfo:
    return UserInfo(
        email=user.email,
        display_name=user.display_name,
        role=Role(user.role),
        active=user.active,
        tenants=tuple(sorted(tenants)),
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        password_set=user.password_hash is not None,
    )


def _info_now(session: Session, user: User) -> UserInfo:
    session.flush()
    return _info(user, grants_by_user(session, [user.id]).get(user.id, []))


def audit_user_change(
    session: Session,
    tenants: Iterable[str],
    *,
    actor: str,
    action: str,
    email: str,
    details: Mapping[str, Any],
) -> None:
    """One entry per tenant chain; the session is flushed first so no pending row of one tenant
    is written while the session acts for another."""
    session.flush()
    for tenant_id in tenants:
        bind_tenant(session, tenant_id)
        audit.append(
            session,
            actor=actor,
            action=action,
            entity="user",
            entity_id=email,
            details={"email": email, **details},
            tenant_id=tenant_id,
        )


def _has_active_admin(session: Session) -> bool:
    return (
        session.scalar(
            select(User.id).where(User.role == Role.ADMIN.value, User.active.is_(True)).limit(1)
        )
        is not None
    )


def _is_bootstrap(acting: Actor | str | None) -> bool:
    return acting is None or (isinstance(acting, str) and not acting.strip())


def _acting_label(session: Session, acting: Actor | str | None, role: Role) -> str:
    """Who adds a user: an admin, or (only while there is no active admin, and only for an
    admin) the bootstrap operator; the bootstrap's caller holds ADMINS_LOCK, so that of two
    bootstraps at once the second finds the first one's admin."""
    if not _is_bootstrap(acting) and acting is not None:
        return require_global(session, acting, Permission.MANAGE).email
    if _has_active_admin(session):
        raise PermissionDeniedError(
            "there is already an active admin, so adding a user needs an acting admin: "
            "pass --as EMAIL or set RECON_USER"
        )
    if role is not Role.ADMIN:
        raise PermissionDeniedError(
            "there is no admin yet: add the first user with --role admin, then act as them"
        )
    return BOOTSTRAP_ACTOR


def create_user_row(
    session: Session,
    *,
    actor: str,
    email: str,
    role: Role,
    display_name: str,
    tenants: Sequence[str],
    password_hash: str | None,
    action: str = "user.added",
) -> User:
    """Insert a user and their grants, auditing in each granted tenant (caller checked access)."""
    if find_user(session, email) is not None:
        raise ConflictError(
            f"user {email!r} already exists; `recon user grant` gives them another tenant"
        )
    wanted = sorted(set(tenants))
    for tenant_id in wanted:
        get_tenant(session, tenant_id)
    user = User(
        email=email,
        display_name=display_name.strip(),
        role=role.value,
        active=True,
        password_hash=password_hash,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # added at the same moment; `from None`: the row holds the hash
        raise ConflictError(f"user {email!r} was just added by someone else") from None
    for tenant_id in wanted:
        bind_tenant(session, tenant_id)
        session.add(TenantGrant(tenant_id=tenant_id, user_id=user.id, granted_by=actor))
        session.flush()
    details = {"role": role.value, "tenants": wanted, "password_set": password_hash is not None}
    audit_user_change(session, wanted, actor=actor, action=action, email=email, details=details)
    return user


# -- the service -----------------------------------------------------------------------------------


def add_user(
    engine: Engine,
    acting: Actor | str | None,
    email: str,
    role: Role | str,
    *,
    display_name: str = "",
    tenants: Sequence[str] = (),
    password: str | None = None,
) -> UserInfo:
    """Add an active user with `role`, granted `tenants`, with a local password or none (then
    they sign in only through OIDC). `acting` None is the bootstrap of the first admin."""
    wanted, wanted_role = checked_email(email), checked_role(role)
    password_hash = hash_password(password) if password is not None else None
    with admin_session(engine) as session:
        if _is_bootstrap(acting):
            transaction_lock(session, ADMINS_LOCK)  # before the check: one bootstrap at a time
        actor = _acting_label(session, acting, wanted_role)
        user = create_user_row(
            session,
            actor=actor,
            email=wanted,
            role=wanted_role,
            display_name=display_name or wanted.split("@")[0],
            tenants=tenants,
            password_hash=password_hash,
        )
        return _info_now(session, user)


def list_users(engine: Engine, acting: Actor | str) -> list[UserInfo]:
    """Every user with their grants, by email (admins only)."""
    with admin_session(engine) as session:
        require_global(session, acting, Permission.MANAGE)
        users = list(session.scalars(select(User).order_by(User.email)))
        grants = grants_by_user(session)
        return [_info(user, grants.get(user.id, [])) for user in users]


def disable_user(engine: Engine, acting: Actor | str, email: str) -> UserInfo:
    """Disable a user: they can no longer sign in or act. The last active admin stays."""
    return _set_active(engine, acting, email, active=False)


def enable_user(engine: Engine, acting: Actor | str, email: str) -> UserInfo:
    """Enable a disabled user again, with the role and grants they had."""
    return _set_active(engine, acting, email, active=True)


def _set_active(engine: Engine, acting: Actor | str, email: str, *, active: bool) -> UserInfo:
    with admin_session(engine) as session:
        transaction_lock(session, ADMINS_LOCK)
        actor = require_global(session, acting, Permission.MANAGE)
        user = _user(session, email)
        if user.active == active:
            return _info_now(session, user)
        if not active and user.role == Role.ADMIN.value and active_admin_count(session) <= 1:
            raise RuleViolationError(
                f"{user.email} is the last active admin; add another admin before disabling them"
            )
        user.active = active
        info = _info_now(session, user)
        audit_user_change(
            session,
            info.tenants,
            actor=actor.email,
            action="user.enabled" if active else "user.disabled",
            email=user.email,
            details={"role": user.role},
        )
        return info


def active_admin_count(session: Session) -> int:
    """How many active admins there are (a caller about to remove one holds ADMINS_LOCK)."""
    query = select(func.count(User.id)).where(User.role == Role.ADMIN.value, User.active.is_(True))
    return int(session.scalar(query) or 0)


def set_role(engine: Engine, acting: Actor | str, email: str, role: Role | str) -> RoleChange:
    """Give a user another role (admins only), audited with the old and the new role; a no-op
    when they have it. The last active admin keeps the admin role."""
    wanted = checked_role(role)
    with admin_session(engine) as session:
        transaction_lock(session, ADMINS_LOCK)
        actor = require_global(session, acting, Permission.MANAGE)
        user = _user(session, email)
        before = Role(user.role)
        if before is wanted:
            return RoleChange(_info_now(session, user), before)
        if before is Role.ADMIN and user.active and active_admin_count(session) <= 1:
            raise RuleViolationError(
                f"{user.email} is the last active admin; make another user admin before "
                "giving them another role"
            )
        user.role = wanted.value
        info = _info_now(session, user)
        audit_user_change(
            session,
            info.tenants,
            actor=actor.email,
            action="user.role_changed",
            email=user.email,
            details={"before": before.value, "after": wanted.value},
        )
        return RoleChange(info, before)


def grant_tenant(engine: Engine, acting: Actor | str, email: str, tenant_id: str) -> UserInfo:
    """Let a user see `tenant_id` (an unknown tenant is NotFoundError); a no-op if they may."""
    with admin_session(engine) as session:
        actor = require_global(session, acting, Permission.MANAGE)
        get_tenant(session, tenant_id)
        user = _user(session, email)
        if _grant_row(session, user.id, tenant_id) is None:
            session.add(TenantGrant(tenant_id=tenant_id, user_id=user.id, granted_by=actor.email))
            audit_user_change(
                session,
                [tenant_id],
                actor=actor.email,
                action="user.granted",
                email=user.email,
                details={"role": user.role, "tenant": tenant_id},
            )
        return _info_now(session, user)


def revoke_tenant(engine: Engine, acting: Actor | str, email: str, tenant_id: str) -> UserInfo:
    """Take `tenant_id` away from a user (an unknown tenant is NotFoundError); a no-op if they
    had no access."""
    with admin_session(engine) as session:
        actor = require_global(session, acting, Permission.MANAGE)
        get_tenant(session, tenant_id)
        user = _user(session, email)
        grant = _grant_row(session, user.id, tenant_id)
        if grant is not None:
            session.delete(grant)
            audit_user_change(
                session,
                [tenant_id],
                actor=actor.email,
                action="user.revoked",
                email=user.email,
                details={"role": user.role, "tenant": tenant_id},
            )
        return _info_now(session, user)


def set_password(engine: Engine, acting: Actor | str, email: str, password: str) -> UserInfo:
    """Set a user's local password: an admin for anyone, any active user for themselves."""
    password_hash = hash_password(password)
    with admin_session(engine) as session:
        acting_email = acting.email if isinstance(acting, Actor) else acting
        if normalise_email(acting_email) == normalise_email(email):
            actor = load_actor(session, acting_email)
        else:
            actor = require_global(session, acting, Permission.MANAGE)
        user = _user(session, email)
        user.password_hash = password_hash
        info = _info_now(session, user)
        audit_user_change(
            session,
            info.tenants,
            actor=actor.email,
            action="user.password_set",
            email=user.email,
            details={},
        )
        return info


def authenticate(
    engine: Engine, email: str, password: str, *, settings: Settings | None = None
) -> Actor:
    """The active user whose local password this is, with last_login_at updated.

    Any failure is one sentence that does not say whether the email exists. In production local
    passwords are refused unless RECON_LOCAL_PASSWORDS=true."""
    if settings is None:
        from recon.settings import load_settings

        settings = load_settings()
    if settings.is_production and not settings.local_passwords:
        raise PermissionDeniedError(
            "local passwords are off in production; sign in through the identity provider "
            "(RECON_LOCAL_PASSWORDS=true turns them on)"
        )
    with admin_session(engine) as session:
        user = find_user(session, email)
        stored = user.password_hash if user is not None else None
        if not _password_matches(stored or _decoy_hash(), password):
            raise PermissionDeniedError(SIGN_IN_REFUSED)
        if user is None or stored is None or not user.active:
            raise PermissionDeniedError(SIGN_IN_REFUSED)
        if needs_rehash(stored):
            user.password_hash = hash_password(password)
        user.last_login_at = utcnow()
        return Actor(user.id, user.email, Role(user.role), user.display_name)


def granted_tenants(engine: Engine, who: Actor | str) -> list[str]:
    """The tenants an active user may see, by id (a disabled or unknown user is refused)."""
    with admin_session(engine) as session:
        actor = load_actor(session, who.email if isinstance(who, Actor) else who)
        return sorted(grants_by_user(session, [actor.user_id]).get(actor.user_id, []))


def actor_from_identity(
    engine: Engine, claims: Mapping[str, Any], mapping: IdentityMapping | None = None
) -> Actor:
    """The Actor an OIDC sign-in maps to (see `recon.review.identity`)."""
    from recon.review.identity import actor_from_identity as from_identity

    return from_identity(engine, claims, mapping)
