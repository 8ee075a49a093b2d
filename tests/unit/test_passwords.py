"""Password hashing rules and the OIDC mapping, without a database."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import VerifyMismatchError

from recon.errors import ConfigError, InputFileError, PermissionDeniedError, RuleViolationError
from recon.review.access import Role
from recon.review.identity import (
    IdentityMapping,
    IdentityRule,
    load_identity_mapping,
    mapping_from_settings,
    match_identity,
    parse_identity_mapping,
)
from recon.review.users import checked_email, checked_role, hash_password
from recon.settings import Settings

ISSUER = "https://login.acme.test"


def test_hashes_are_argon2id_salted_and_verify() -> None:
    first, second = hash_password("a long enough secret"), hash_password("a long enough secret")
    assert first.startswith("$argon2id$") and first != second  # a fresh salt each time
    assert "a long enough secret" not in first
    hasher = PasswordHasher()
    assert hasher.verify(first, "a long enough secret")
    assert hasher.type is Type.ID and not hasher.check_needs_rehash(first)
    with pytest.raises(VerifyMismatchError):
        hasher.verify(first, "a long enough secreT")


@pytest.mark.parametrize(
    ("password", "rule"),
    [("short", "at least 12"), ("x" * 1025, "at most 1024"), ("twelve chars\nx", "line break")],
)
def test_unfit_passwords_are_refused_without_echoing_them(password: str, rule: str) -> None:
    with pytest.raises(RuleViolationError, match=rule) as refused:
        hash_password(password)
    assert password not in str(refused.value)


def test_emails_and_roles_are_normalised_or_refused() -> None:
    assert checked_email("  Ana@Acme.TEST ") == "ana@acme.test"
    with pytest.raises(ConfigError, match="not an email address"):
        checked_email("ana at acme")
    assert checked_role(" Auditor ") is Role.AUDITOR
    with pytest.raises(ConfigError, match="finance, auditor, admin"):
        checked_role("boss")


MAPPING = IdentityMapping(
    rules=(
        IdentityRule(ISSUER, Role.FINANCE, group="staff"),
        IdentityRule(ISSUER, Role.AUDITOR, group="audit"),
        IdentityRule(ISSUER, Role.ADMIN, email="boss@acme.test"),
    )
)


def test_an_email_rule_wins_over_groups_and_the_first_group_rule_wins() -> None:
    boss = {"iss": ISSUER + "/", "email": "Boss@acme.test", "groups": ["audit"]}
    assert match_identity(MAPPING, boss)[1].role is Role.ADMIN
    both = {"iss": ISSUER, "email": "ana@acme.test", "groups": ["audit", "staff"]}
    assert match_identity(MAPPING, both) == ("ana@acme.test", MAPPING.rules[0])


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://elsewhere.test", "email": "boss@acme.test"}, "not mapped"),
        ({"iss": ISSUER, "email": "ana@acme.test", "groups": ["other"]}, "not mapped"),
        ({"iss": ISSUER}, "no issuer or email"),
        ({"iss": ISSUER, "email": "boss@acme.test", "email_verified": False}, "not verified"),
    ],
)
def test_unmapped_or_unverified_identities_are_refused(
    claims: dict[str, object], reason: str
) -> None:
    with pytest.raises(PermissionDeniedError, match=reason):
        match_identity(MAPPING, claims)


def test_mapping_files_in_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "map.toml"
    toml.write_text(
        'create_users = true\ngroups_claim = "roles"\n[[identity]]\nissuer = "https://i.test"\n'
        'group = "fin"\nrole = "finance"\ntenants = ["acme"]\n',
        encoding="utf-8",
    )
    mapping = load_identity_mapping(toml)
    assert mapping == IdentityMapping(
        rules=(IdentityRule("https://i.test", Role.FINANCE, group="fin", tenants=("acme",)),),
        create_users=True,
        groups_claim="roles",
    )
    as_json = tmp_path / "map.json"
    as_json.write_text(
        '{"identity": [{"issuer": "https://i.test", "email": "A@i.test", "role": "admin"}]}',
        encoding="utf-8",
    )
    assert load_identity_mapping(as_json).rules[0].email == "a@i.test"
    assert mapping_from_settings(Settings(oidc_mapping=as_json)).create_users is False


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"identity": [{"issuer": ISSUER, "role": "finance"}]}, "exactly one of email or group"),
        ({"identity": [{"email": "a@b.c", "role": "finance"}]}, "needs an issuer"),
        ({"identity": [{"issuer": ISSUER, "group": "g", "role": "boss"}]}, "unknown role"),
        ({"create_users": "yes"}, "create_users must be true or false"),
    ],
)
def test_a_broken_mapping_is_one_sentence(document: dict[str, object], reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        parse_identity_mapping(document)


def test_a_missing_or_unreadable_mapping_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RECON_OIDC_MAPPING"):
        mapping_from_settings(Settings())
    with pytest.raises(InputFileError, match="cannot read"):
        load_identity_mapping(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("identity = [", encoding="utf-8")
    with pytest.raises(InputFileError, match="not valid"):
        load_identity_mapping(bad)
