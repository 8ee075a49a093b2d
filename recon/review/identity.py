"""OIDC sign-in: which user and role an identity provider's claims map to.

The mapping is a TOML or JSON file named by `RECON_OIDC_MAPPING`:

    create_users = false          # true: a mapped identity with no user row gets one
    groups_claim = "groups"       # the claim that lists the identity's groups

    [[identity]]                  # by email: wins over any group rule of the same issuer
    issuer = "https://login.example.com"
    email = "ana@example.com"
    role = "admin"

    [[identity]]                  # by group: the first matching rule in file order wins
    issuer = "https://login.example.com"
    group = "recon-finance"
    role = "finance"
    tenants = ["acme"]            # granted only to users created by this rule

The mapped role is the truth: a user whose row says otherwise gets the mapped role at sign-in
(audited), except that the last active admin is never demoted (that sign-in is refused). Grants
of existing users stay as admins set them.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from recon.db.base import utcnow
from recon.db.tenancy import admin_session
from recon.errors import ConfigError, InputFileError, PermissionDeniedError
from recon.locks import transaction_lock
from recon.review.access import Actor, Role, normalise_email
from recon.review.users import (
    ADMINS_LOCK,
    active_admin_count,
    audit_user_change,
    checked_email,
    checked_role,
    create_user_row,
    find_user,
    grants_by_user,
)

if TYPE_CHECKING:
    from recon.settings import Settings


@dataclass(frozen=True)
class IdentityRule:
    """One line of the mapping: issuer plus an email or a group, to a role."""

    issuer: str
    role: Role
    email: str | None = None
    group: str | None = None
    tenants: tuple[str, ...] = ()


@dataclass(frozen=True)
class IdentityMapping:
    """The whole mapping file."""

    rules: tuple[IdentityRule, ...]
    create_users: bool = False
    groups_claim: str = "groups"


def _issuer(value: object) -> str:
    return str(value).strip().rstrip("/")


def _rule(raw: object, where: str) -> IdentityRule:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table with issuer, role and email or group")
    issuer, email, group = raw.get("issuer"), raw.get("email"), raw.get("group")
    if not isinstance(issuer, str) or not issuer.strip():
        raise ConfigError(f"{where} needs an issuer")
    if (email is None) == (group is None):
        raise ConfigError(f"{where} needs exactly one of email or group")
    tenants = raw.get("tenants", [])
    if not isinstance(tenants, list) or not all(isinstance(t, str) for t in tenants):
        raise ConfigError(f"{where}: tenants must be a list of tenant ids")
    return IdentityRule(
        issuer=_issuer(issuer),
        role=checked_role(str(raw.get("role", ""))),
        email=checked_email(str(email)) if email is not None else None,
        group=str(group) if group is not None else None,
        tenants=tuple(tenants),
    )


def parse_identity_mapping(
    data: Mapping[str, Any], source: str = "the OIDC mapping"
) -> IdentityMapping:
    """The mapping from a parsed TOML/JSON document; ConfigError names what is wrong."""
    rules = data.get("identity", [])
    if not isinstance(rules, list):
        raise ConfigError(f"{source}: identity must be a list of rules")
    create_users = data.get("create_users", False)
    groups_claim = data.get("groups_claim", "groups")
    if not isinstance(create_users, bool) or not isinstance(groups_claim, str):
        raise ConfigError(f"{source}: create_users must be true or false, groups_claim a name")
    return IdentityMapping(
        rules=tuple(_rule(raw, f"{source}: identity rule {n}") for n, raw in enumerate(rules, 1)),
        create_users=create_users,
        groups_claim=groups_claim,
    )


def load_identity_mapping(path: Path) -> IdentityMapping:
    """Read a mapping file (`.toml`, else JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputFileError(f"cannot read the OIDC mapping {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(f"the OIDC mapping {path} is not valid: {exc}") from None
    if not isinstance(data, dict):
        raise InputFileError(f"the OIDC mapping {path} must hold a table at the top level")
    return parse_identity_mapping(data, str(path))


def mapping_from_settings(settings: Settings | None = None) -> IdentityMapping:
    """The mapping named by RECON_OIDC_MAPPING; ConfigError when none is set."""
    if settings is None:
        from recon.settings import load_settings

        settings = load_settings()
    if settings.oidc_mapping is None:
        raise ConfigError("no OIDC mapping: set RECON_OIDC_MAPPING to a TOML or JSON file")
    return load_identity_mapping(settings.oidc_mapping)


def _groups(claims: Mapping[str, Any], name: str) -> set[str]:
    value = claims.get(name)
    if isinstance(value, str):
        return {value}
    if isinstance(value, list | tuple):
        return {str(item) for item in value}
    return set()


def match_identity(mapping: IdentityMapping, claims: Mapping[str, Any]) -> tuple[str, IdentityRule]:
    """(email, rule) for `claims`, or PermissionDeniedError when the identity is not mapped."""
    issuer, raw_email = _issuer(claims.get("iss", "")), claims.get("email")
    if not issuer or not isinstance(raw_email, str) or not raw_email.strip():
        raise PermissionDeniedError("the sign-in carries no issuer or email; it cannot be mapped")
    if claims.get("email_verified") is False:
        raise PermissionDeniedError(
            "the identity provider has not verified this email; it cannot be used to sign in"
        )
    email = normalise_email(raw_email)
    mine = [rule for rule in mapping.rules if rule.issuer == issuer]
    for rule in mine:
        if rule.email == email:
            return email, rule
    groups = _groups(claims, mapping.groups_claim)
    for rule in mine:
        if rule.group is not None and rule.group in groups:
            return email, rule
    raise PermissionDeniedError(
        f"{email} is not mapped to a role for this identity provider; ask an admin to add it "
        "to the OIDC mapping"
    )


def _keep_an_admin(session: Session, email: str, role: Role) -> None:
    """Refuse the sign-in that would demote the last active admin (under ADMINS_LOCK, like
    every other change that can remove an admin)."""
    transaction_lock(session, ADMINS_LOCK)
    if active_admin_count(session) <= 1:
        raise PermissionDeniedError(
            f"the OIDC mapping makes {email} {role.value}, but they are the last active admin; "
            "map them to admin, or make another user admin first"
        )


def actor_from_identity(
    engine: Engine, claims: Mapping[str, Any], mapping: IdentityMapping | None = None
) -> Actor:
    """The active user an OIDC identity maps to, with the mapped role and last_login_at set.

    A mapped identity without a user row is refused unless the mapping says create_users."""
    mapping = mapping or mapping_from_settings()
    email, rule = match_identity(mapping, claims)
    label = f"oidc:{rule.issuer}"
    with admin_session(engine) as session:
        user = find_user(session, email)
        if user is None:
            if not mapping.create_users:
                raise PermissionDeniedError(
                    f"{email} has no user here; an admin adds it with recon user add"
                )
            user = create_user_row(
                session,
                actor=label,
                email=email,
                role=rule.role,
                display_name=str(claims.get("name") or email.split("@")[0]),
                tenants=rule.tenants,
                password_hash=None,
                action="user.added_from_identity",
            )
        if not user.active:
            raise PermissionDeniedError(f"user {email!r} is disabled")
        if user.role != rule.role.value:
            if user.role == Role.ADMIN.value:
                _keep_an_admin(session, email, rule.role)
            before, user.role = user.role, rule.role.value
            session.flush()
            tenants = grants_by_user(session, [user.id]).get(user.id, [])
            audit_user_change(
                session,
                tenants,
                actor=label,
                action="user.role_changed",
                email=email,
                details={"before": before, "after": rule.role.value},
            )
        user.last_login_at = utcnow()
        return Actor(user.id, user.email, Role(user.role), user.display_name)
