"""Who may do what: roles, permissions and tenant grants, checked inside every service call.

The role is read from the `users` table on every check, in the same transaction as the work, so a
stale or forged `Actor` (a widget a role should not have) cannot act beyond what the database says.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recon.db.models import TenantGrant, User
from recon.db.tenancy import TENANT_KEY
from recon.errors import PermissionDeniedError


class Role(StrEnum):
    """What a user is: finance staff work the queue, auditors read and export, admins manage."""

    FINANCE = "finance"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Permission(StrEnum):
    """What an operation needs."""

    READ = "read"  # the queue, one exception, explorers, runs, the audit log
    EXPORT = "export"  # the auditor's report
    WORK = "work"  # any decision on the books: exceptions, allocations, suggestions
    MANAGE = "manage"  # users, grants, tenants, bank connections


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.FINANCE: frozenset({Permission.READ, Permission.EXPORT, Permission.WORK}),
    Role.AUDITOR: frozenset({Permission.READ, Permission.EXPORT}),
    Role.ADMIN: frozenset({Permission.READ, Permission.EXPORT, Permission.WORK, Permission.MANAGE}),
}

_REFUSALS: dict[Permission, str] = {
    Permission.READ: "read this tenant's records",
    Permission.EXPORT: "export reports",
    Permission.WORK: "change decisions (auditors read and export only)",
    Permission.MANAGE: "manage users, tenants or connections (admins only)",
}


@dataclass(frozen=True)
class Actor:
    """The person acting, as the database knows them at the time of the check."""

    user_id: int
    email: str
    role: Role
    display_name: str

    @property
    def label(self) -> str:
        """How the audit log and the tables name this person: their email."""
        return self.email


def normalise_email(email: str) -> str:
    """Emails compare without case and surrounding blanks."""
    return email.strip().lower()


def load_actor(session: Session, email: str) -> Actor:
    """The active user with `email`, or PermissionDeniedError naming why not."""
    wanted = normalise_email(email)
    if not wanted:
        raise PermissionDeniedError(
            "no acting user: pass --as EMAIL or set RECON_USER to a user added with recon user add"
        )
    user = session.scalar(select(User).where(func.lower(User.email) == wanted))
    if user is None:
        raise PermissionDeniedError(
            f"there is no user {wanted!r}; an admin adds one with recon user add"
        )
    if not user.active:
        raise PermissionDeniedError(f"user {wanted!r} is disabled")
    return Actor(user.id, user.email, Role(user.role), user.display_name)


def has_grant(session: Session, actor: Actor, tenant_id: str) -> bool:
    """Whether `actor` holds a grant on `tenant_id` (the session must act for that tenant)."""
    return (
        session.scalar(
            select(TenantGrant.id).where(
                TenantGrant.tenant_id == tenant_id, TenantGrant.user_id == actor.user_id
            )
        )
        is not None
    )


def require(session: Session, who: Actor | str, tenant_id: str, permission: Permission) -> Actor:
    """Check, in `session`'s transaction, that `who` may do `permission` on `tenant_id`.

    `session` must be a tenant session for `tenant_id`. Returns the actor as the database knows
    them now; raises PermissionDeniedError (one sentence) otherwise. An unknown tenant and a
    tenant without a grant get the same answer, so the refusal does not reveal which tenants exist.
    """
    if session.info.get(TENANT_KEY) != tenant_id:
        raise ValueError(f"require() needs a session acting for tenant {tenant_id!r}")
    actor = load_actor(session, who.email if isinstance(who, Actor) else who)
    if permission not in ROLE_PERMISSIONS[actor.role]:
        raise PermissionDeniedError(
            f"{actor.email} is {_article(actor.role)} {actor.role.value} and may not "
            f"{_REFUSALS[permission]}"
        )
    if not has_grant(session, actor, tenant_id):
        raise PermissionDeniedError(
            f"{actor.email} has no access to tenant {tenant_id!r}; an admin grants it with "
            "recon user grant"
        )
    return actor


def require_global(session: Session, who: Actor | str, permission: Permission) -> Actor:
    """Check a permission that is not about one tenant (managing users): the role alone."""
    actor = load_actor(session, who.email if isinstance(who, Actor) else who)
    if permission not in ROLE_PERMISSIONS[actor.role]:
        raise PermissionDeniedError(
            f"{actor.email} is {_article(actor.role)} {actor.role.value} and may not "
            f"{_REFUSALS[permission]}"
        )
    return actor


def _article(role: Role) -> str:
    return "an" if role.value[0] in "aeiou" else "a"
