"""Users, roles, grants, passwords and OIDC sign-in, through the service and `recon user`, on
SQLite and on PostgreSQL as the application role (tenant_grants under row-level security)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, select

from apps.cli.main import main
from recon.db.models import User
from recon.db.tenancy import admin_session, tenant_session
from recon.errors import ConflictError, NotFoundError, PermissionDeniedError, RuleViolationError
from recon.review.access import Permission, Role, require
from recon.review.identity import IdentityMapping, IdentityRule
from recon.review.users import (
    SIGN_IN_REFUSED,
    actor_from_identity,
    add_user,
    authenticate,
    disable_user,
    enable_user,
    grant_tenant,
    granted_tenants,
    list_users,
    revoke_tenant,
    set_password,
)
from recon.settings import Environment, Settings
from tests.integration.user_fixtures import (
    ADMIN,
    BACKENDS,
    PASSWORD,
    Backend,
    bootstrapped,
    cli,
    make_backend,
    user_audit,
)

ISSUER = "https://login.acme.test"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """A migrated database with tenants acme and globex; the CLI points at the app role."""
    return make_backend(request, monkeypatch)


@pytest.fixture
def app(backend: Backend) -> Engine:
    """The application engine with a bootstrapped admin (granted acme)."""
    return bootstrapped(backend)


# -- the service -----------------------------------------------------------------------------------


def test_add_list_grant_revoke_disable(app: Engine) -> None:
    added = add_user(app, ADMIN, " Ana@Acme.TEST ", "finance", display_name="Ana", tenants=["acme"])
    assert (added.email, added.role, added.tenants, added.active) == (
        "ana@acme.test",
        Role.FINANCE,
        ("acme",),
        True,
    )
    assert not added.password_set and added.last_login_at is None

    assert grant_tenant(app, ADMIN, "ana@acme.test", "globex").tenants == ("acme", "globex")
    assert grant_tenant(app, ADMIN, "ana@acme.test", "globex").tenants == ("acme", "globex")
    assert revoke_tenant(app, ADMIN, "ANA@acme.test", "acme").tenants == ("globex",)
    assert disable_user(app, ADMIN, "ana@acme.test").active is False

    listed = {info.email: info for info in list_users(app, ADMIN)}
    assert set(listed) == {ADMIN, "ana@acme.test"}
    assert listed["ana@acme.test"].tenants == ("globex",)
    assert listed["ana@acme.test"].active is False
    assert listed[ADMIN].role is Role.ADMIN and listed[ADMIN].tenants == ("acme",)


def test_each_change_is_audited_naming_the_acting_admin(app: Engine) -> None:
    add_user(app, ADMIN, "ana@acme.test", "finance", tenants=["acme"], password=PASSWORD)
    grant_tenant(app, ADMIN, "ana@acme.test", "globex")
    set_password(app, ADMIN, "ana@acme.test", PASSWORD + "!")
    revoke_tenant(app, ADMIN, "ana@acme.test", "globex")
    disable_user(app, ADMIN, "ana@acme.test")
    assert enable_user(app, ADMIN, "ana@acme.test").active is True

    acme = [(e.actor, e.action, e.entity_id) for e in user_audit(app, "acme")]
    assert acme == [
        ("bootstrap", "user.added", ADMIN),
        (ADMIN, "user.added", "ana@acme.test"),
        (ADMIN, "user.password_set", "ana@acme.test"),
        (ADMIN, "user.disabled", "ana@acme.test"),
        (ADMIN, "user.enabled", "ana@acme.test"),
    ]
    globex = [(e.actor, e.action) for e in user_audit(app, "globex")]
    assert globex == [
        (ADMIN, "user.granted"),
        (ADMIN, "user.password_set"),
        (ADMIN, "user.revoked"),
    ]


def test_a_finance_user_cannot_manage_users(app: Engine) -> None:
    add_user(app, ADMIN, "ana@acme.test", "finance", tenants=["acme"])
    with pytest.raises(PermissionDeniedError, match="admins only"):
        add_user(app, "ana@acme.test", "eve@acme.test", "admin", tenants=["acme"])
    with pytest.raises(PermissionDeniedError, match="admins only"):
        grant_tenant(app, "ana@acme.test", "ana@acme.test", "globex")
    with pytest.raises(PermissionDeniedError, match="admins only"):
        list_users(app, "ana@acme.test")
    with pytest.raises(PermissionDeniedError, match="admins only"):
        set_password(app, "ana@acme.test", ADMIN, PASSWORD)


def test_the_bootstrap_works_only_for_a_first_admin(backend: Backend) -> None:
    with pytest.raises(PermissionDeniedError, match="no admin yet"):
        add_user(backend.app, None, "ana@acme.test", "finance")
    add_user(backend.app, None, ADMIN, "admin")
    with pytest.raises(PermissionDeniedError, match="acting admin"):
        add_user(backend.app, None, "eve@acme.test", "admin")


def test_broken_requests_are_one_sentence(app: Engine) -> None:
    with pytest.raises(NotFoundError, match="no tenant 'nowhere'"):
        add_user(app, ADMIN, "ana@acme.test", "finance", tenants=["acme", "nowhere"])
    assert [u.email for u in list_users(app, ADMIN)] == [ADMIN]  # nothing of it was kept
    add_user(app, ADMIN, "ana@acme.test", "finance")
    with pytest.raises(ConflictError, match="already exists"):
        add_user(app, ADMIN, "ANA@acme.test", "auditor")
    with pytest.raises(NotFoundError, match="no tenant 'nowhere'"):
        grant_tenant(app, ADMIN, "ana@acme.test", "nowhere")
    with pytest.raises(NotFoundError, match=r"no user 'ghost@acme\.test'"):
        grant_tenant(app, ADMIN, "ghost@acme.test", "acme")
    with pytest.raises(RuleViolationError, match="last active admin"):
        disable_user(app, ADMIN, ADMIN)
    with pytest.raises(RuleViolationError, match="at least 12"):
        set_password(app, ADMIN, "ana@acme.test", "short")


def test_a_racing_add_is_a_conflict_that_carries_no_hash(
    app: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(app, ADMIN, "ana@acme.test", "finance", tenants=["acme"], password=PASSWORD)
    monkeypatch.setattr("recon.review.users.find_user", lambda session, email: None)
    with pytest.raises(ConflictError, match="just added by someone else") as refused:
        add_user(app, ADMIN, "ana@acme.test", "finance", password=PASSWORD)
    assert refused.value.__suppress_context__ and "argon2" not in str(refused.value)


def test_a_user_without_a_grant_gets_nothing_of_another_tenant(app: Engine) -> None:
    add_user(app, ADMIN, "ana@acme.test", "finance", tenants=["acme"])
    assert granted_tenants(app, "ana@acme.test") == ["acme"]
    with (
        tenant_session(app, "globex") as session,
        pytest.raises(PermissionDeniedError, match="no access to tenant 'globex'"),
    ):
        require(session, "ana@acme.test", "globex", Permission.READ)
    revoke_tenant(app, ADMIN, "ana@acme.test", "acme")
    assert granted_tenants(app, "ana@acme.test") == []
    with (
        tenant_session(app, "acme") as session,
        pytest.raises(PermissionDeniedError, match="no access"),
    ):
        require(session, "ana@acme.test", "acme", Permission.READ)


# -- passwords -------------------------------------------------------------------------------------


def test_the_hash_is_argon2id_and_the_password_is_nowhere(app: Engine) -> None:
    add_user(app, ADMIN, "ana@acme.test", "finance", tenants=["acme"], password=PASSWORD)
    with admin_session(app) as session:
        row = session.scalars(select(User).where(User.email == "ana@acme.test")).one()
        stored = row.password_hash
        values = [str(getattr(row, c.key)) for c in User.__table__.columns]
    assert stored is not None and stored.startswith("$argon2id$")
    assert not any(PASSWORD in value for value in values)
    for entry in user_audit(app, "acme"):
        text = json.dumps(entry.details)
        assert PASSWORD not in text and "argon2" not in text
    info = next(u for u in list_users(app, ADMIN) if u.email == "ana@acme.test")
    assert info.password_set and PASSWORD not in repr(info) and "argon2" not in repr(info)


def test_authenticate_signs_in_and_refuses_with_one_generic_sentence(app: Engine) -> None:
    add_user(app, ADMIN, "ana@acme.test", "finance", tenants=["acme"], password=PASSWORD)
    add_user(app, ADMIN, "oidc@acme.test", "auditor", tenants=["acme"])
    actor = authenticate(app, "ANA@acme.test", PASSWORD)
    assert (actor.email, actor.role) == ("ana@acme.test", Role.FINANCE)
    assert next(u for u in list_users(app, ADMIN) if u.email == actor.email).last_login_at

    for email, password in (
        ("ana@acme.test", PASSWORD + "x"),  # wrong password
        ("ghost@acme.test", PASSWORD),  # no such user
        ("oidc@acme.test", PASSWORD),  # no local password: OIDC only
    ):
        with pytest.raises(PermissionDeniedError) as refused:
            authenticate(app, email, password)
        assert str(refused.value) == SIGN_IN_REFUSED
    disable_user(app, ADMIN, "ana@acme.test")
    with pytest.raises(PermissionDeniedError) as refused:
        authenticate(app, "ana@acme.test", PASSWORD)
    assert str(refused.value) == SIGN_IN_REFUSED


def test_an_unknown_email_costs_a_hash_check_too(
    app: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recon.review.users as users

    checked: list[str] = []
    real = users._password_matches

    def counting(stored: str, password: str) -> bool:
        checked.append(stored[:10])
        return real(stored, password)

    monkeypatch.setattr(users, "_password_matches", counting)
    add_user(app, ADMIN, "oidc@acme.test", "auditor", tenants=["acme"])
    for email in ("ghost@acme.test", "oidc@acme.test"):
        with pytest.raises(PermissionDeniedError):
            authenticate(app, email, PASSWORD)
    assert checked == ["$argon2id$", "$argon2id$"]  # the decoy hash, so timing tells nothing


def test_an_outdated_hash_is_replaced_at_sign_in(app: Engine) -> None:
    add_user(app, ADMIN, "ana@acme.test", "finance", tenants=["acme"])
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    with admin_session(app) as session:
        session.scalars(
            select(User).where(User.email == "ana@acme.test")
        ).one().password_hash = weak
    authenticate(app, "ana@acme.test", PASSWORD)
    with admin_session(app) as session:
        stored = session.scalars(select(User.password_hash).where(User.email == "ana@acme.test"))
        renewed = stored.one()
    assert renewed != weak and renewed is not None and renewed.startswith("$argon2id$")
    assert not PasswordHasher().check_needs_rehash(renewed)


def test_production_refuses_local_passwords_unless_turned_on(
    app: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(app, ADMIN, "ana@acme.test", "finance", tenants=["acme"], password=PASSWORD)
    monkeypatch.setenv("RECON_ENV", "production")
    with pytest.raises(PermissionDeniedError, match="local passwords are off in production"):
        authenticate(app, "ana@acme.test", PASSWORD)
    monkeypatch.setenv("RECON_LOCAL_PASSWORDS", "true")
    assert authenticate(app, "ana@acme.test", PASSWORD).email == "ana@acme.test"
    off = Settings(env=Environment.PRODUCTION, local_passwords=False)
    with pytest.raises(PermissionDeniedError, match="RECON_LOCAL_PASSWORDS"):
        authenticate(app, "ana@acme.test", PASSWORD, settings=off)


# -- OIDC ------------------------------------------------------------------------------------------


MAPPING_TOML = f"""
create_users = false

[[identity]]
issuer = "{ISSUER}/"
email = "Boss@acme.test"
role = "admin"

[[identity]]
issuer = "{ISSUER}"
group = "recon-finance"
role = "finance"
tenants = ["acme"]
"""


def test_oidc_maps_by_email_and_by_group(app: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path("mapping.toml")
    path.write_text(MAPPING_TOML, encoding="utf-8")
    monkeypatch.setenv("RECON_OIDC_MAPPING", str(path))
    add_user(app, ADMIN, "boss@acme.test", "finance", tenants=["acme"])
    add_user(app, ADMIN, "ana@acme.test", "finance", tenants=["acme"])

    boss = actor_from_identity(app, {"iss": ISSUER, "email": "boss@acme.test", "groups": []})
    assert boss.role is Role.ADMIN  # the mapping is the truth: the row followed it
    ana = actor_from_identity(
        app, {"iss": ISSUER, "email": "ana@acme.test", "groups": ["x", "recon-finance"]}
    )
    assert (ana.email, ana.role) == ("ana@acme.test", Role.FINANCE)
    changed = [(e.actor, e.action, e.details) for e in user_audit(app, "acme")][-1]
    assert changed == (
        f"oidc:{ISSUER}",
        "user.role_changed",
        {"email": "boss@acme.test", "before": "finance", "after": "admin"},
    )

    with pytest.raises(PermissionDeniedError, match="not mapped"):
        actor_from_identity(
            app,
            {"iss": "https://other.test", "email": "ana@acme.test", "groups": ["recon-finance"]},
        )
    with pytest.raises(PermissionDeniedError, match="has no user here"):
        actor_from_identity(
            app, {"iss": ISSUER, "email": "new@acme.test", "groups": ["recon-finance"]}
        )
    disable_user(app, ADMIN, "ana@acme.test")
    with pytest.raises(PermissionDeniedError, match="disabled"):
        actor_from_identity(
            app, {"iss": ISSUER, "email": "ana@acme.test", "groups": ["recon-finance"]}
        )


def test_oidc_creates_users_when_the_mapping_says_so(app: Engine) -> None:
    mapping = IdentityMapping(
        rules=(IdentityRule(ISSUER, Role.AUDITOR, group="auditors", tenants=("globex",)),),
        create_users=True,
        groups_claim="roles",
    )
    claims = {"iss": ISSUER, "email": "New@Acme.test", "roles": "auditors", "name": "Nia"}
    actor = actor_from_identity(app, claims, mapping)
    assert (actor.email, actor.role, actor.display_name) == ("new@acme.test", Role.AUDITOR, "Nia")
    assert granted_tenants(app, actor) == ["globex"]
    created = user_audit(app, "globex")[-1]
    assert (created.actor, created.action) == (f"oidc:{ISSUER}", "user.added_from_identity")
    with pytest.raises(PermissionDeniedError):
        authenticate(app, "new@acme.test", PASSWORD)  # no local password: OIDC only


# -- the CLI ---------------------------------------------------------------------------------------


def test_cli_bootstrap_add_list_grant_revoke_disable(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "user", "add", ADMIN, "--role", "admin", "--tenant", "acme")
    assert (code, err) == (0, "") and ADMIN in out
    code, out, err = cli(
        capsys, "user", "add", "ana@acme.test", "--role", "finance", "--tenant", "acme",
        "--name", "Ana", "--password-stdin", "--as", ADMIN, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert code == 0 and "ana@acme.test" in out and PASSWORD not in out + err
    assert (
        cli(capsys, "user", "grant", "ana@acme.test", "--tenant", "globex", "--as", ADMIN)[0] == 0
    )
    assert cli(capsys, "user", "revoke", "ana@acme.test", "--tenant", "acme", "--as", ADMIN)[0] == 0
    assert cli(capsys, "user", "disable", "ana@acme.test", "--as", ADMIN)[0] == 0

    code, out, _ = cli(capsys, "user", "list", "--json", "--as", ADMIN)
    users = {row["email"]: row for row in json.loads(out)}
    assert code == 0 and PASSWORD not in out and "argon2" not in out
    assert users["ana@acme.test"]["tenants"] == ["globex"]
    assert users["ana@acme.test"]["active"] is False and users["ana@acme.test"]["password_set"]
    assert users[ADMIN]["role"] == "admin"
    code, out, _ = cli(capsys, "user", "list", "--as", ADMIN)
    assert code == 0 and "ana@acme.test" in out and PASSWORD not in out


def test_cli_refusals_are_one_sentence_with_their_exit_code(
    app: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(app, ADMIN, "ana@acme.test", "finance", tenants=["acme"])
    code, _, err = cli(
        capsys, "user", "add", "eve@acme.test", "--role", "admin", "--as", "ana@acme.test"
    )
    assert code == 13 and "admins only" in err and "Traceback" not in err
    monkeypatch.setenv("RECON_USER", ADMIN)
    code, _, err = cli(capsys, "user", "grant", "ana@acme.test", "--tenant", "nowhere")
    assert code == 5 and "no tenant 'nowhere'" in err
    code, _, err = cli(capsys, "user", "add", "ana@acme.test", "--role", "finance")
    assert code == 14 and "already exists" in err
    code, _, err = cli(capsys, "user", "disable", ADMIN)
    assert code == 15 and "last active admin" in err
    code, _, err = cli(capsys, "user", "add", "x@acme.test", "--role", "boss")
    assert code == 2 and "unknown role" in err


def test_cli_password_from_stdin_then_sign_in(
    app: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    add_user(app, ADMIN, "ana@acme.test", "finance", tenants=["acme"])
    code, out, err = cli(
        capsys, "user", "password", "ana@acme.test", "--password-stdin", "--as", ADMIN,
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert code == 0 and "password of ana@acme.test set" in out and PASSWORD not in out + err
    assert authenticate(app, "ana@acme.test", PASSWORD).email == "ana@acme.test"
    code, _, err = cli(capsys, "user", "password", "ana@acme.test", "--as", ADMIN)
    assert code == 2 and "--password-stdin" in err  # stdin is no terminal: nothing to ask on


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cli_asks_for_the_password_twice_on_a_terminal(
    app: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["", PASSWORD, PASSWORD, PASSWORD, PASSWORD + "?"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr("sys.stdin", _Terminal())
    monkeypatch.setenv("RECON_USER", ADMIN)
    assert main(["user", "add", "ana@acme.test", "--role", "finance"]) == 0  # empty: OIDC only
    assert main(["user", "password", "ana@acme.test"]) == 0
    assert authenticate(app, "ana@acme.test", PASSWORD).email == "ana@acme.test"
    assert main(["user", "password", "ana@acme.test"]) == 2  # the two answers differ
    out, err = capsys.readouterr()
    assert "differ" in err and PASSWORD not in out + err
    assert authenticate(app, "ana@acme.test", PASSWORD).email == "ana@acme.test"
