"""Changing a user's role, the last active admin, and a bootstrap raced by two processes, through
the service and `recon user role`, on SQLite and on PostgreSQL as the application role."""

from __future__ import annotations

import io
import multiprocessing
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select

from recon.db.models import User
from recon.db.tenancy import admin_session, tenant_session
from recon.errors import ConfigError, NotFoundError, PermissionDeniedError, RuleViolationError
from recon.review.access import Permission, Role, require
from recon.review.identity import IdentityMapping, IdentityRule
from recon.review.users import (
    actor_from_identity,
    add_user,
    disable_user,
    enable_user,
    grant_tenant,
    list_users,
    set_role,
)
from tests.integration.user_fixtures import (
    ADMIN,
    BACKENDS,
    Backend,
    bootstrapped,
    cli,
    make_backend,
    user_audit,
)

ANA = "ana@acme.test"
BOB = "bob@acme.test"
SLOW = 1.0  # seconds each racer waits between its check and its write, to widen the race


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """A migrated database with tenants acme and globex; the CLI points at the app role."""
    return make_backend(request, monkeypatch)


@pytest.fixture
def app(backend: Backend) -> Engine:
    """The application engine with a bootstrapped admin (granted acme)."""
    return bootstrapped(backend)


def _roles(engine: Engine) -> dict[str, tuple[str, bool]]:
    with admin_session(engine) as session:
        return {u.email: (u.role, u.active) for u in session.scalars(select(User))}


# -- the service -----------------------------------------------------------------------------------


def test_an_admin_changes_a_role_audited_with_the_old_and_new_role(app: Engine) -> None:
    add_user(app, ADMIN, ANA, "finance", tenants=["acme"])
    grant_tenant(app, ADMIN, ANA, "globex")
    change = set_role(app, ADMIN, " ANA@acme.test ", "auditor")
    assert change.changed and change.before is Role.FINANCE
    assert (change.user.email, change.user.role, change.user.tenants) == (
        ANA,
        Role.AUDITOR,
        ("acme", "globex"),
    )
    again = set_role(app, ADMIN, ANA, Role.AUDITOR)  # a no-op: no entry
    assert not again.changed and again.user.role is Role.AUDITOR

    for tenant in ("acme", "globex"):
        last = user_audit(app, tenant)[-1]
        assert (last.actor, last.action, last.entity_id, last.details) == (
            ADMIN,
            "user.role_changed",
            ANA,
            {"email": ANA, "before": "finance", "after": "auditor"},
        )
    assert [e.action for e in user_audit(app, "acme")].count("user.role_changed") == 1
    with (
        tenant_session(app, "acme") as session,
        pytest.raises(PermissionDeniedError, match="is an auditor and may not change decisions"),
    ):
        require(session, ANA, "acme", Permission.WORK)  # the new role holds at once

    assert set_role(app, ADMIN, ANA, "admin").user.role is Role.ADMIN
    assert {u.email: u.role for u in list_users(app, ANA)}[ANA] is Role.ADMIN  # ana manages now


def test_only_an_admin_changes_a_role(app: Engine) -> None:
    add_user(app, ADMIN, ANA, "finance", tenants=["acme"])
    add_user(app, ADMIN, BOB, "auditor", tenants=["acme"])
    with pytest.raises(PermissionDeniedError, match="admins only"):
        set_role(app, ANA, ANA, "admin")  # not even for themselves
    with pytest.raises(PermissionDeniedError, match="admins only"):
        set_role(app, BOB, ANA, "auditor")
    disable_user(app, ADMIN, ANA)
    with pytest.raises(PermissionDeniedError, match="disabled"):
        set_role(app, ANA, BOB, "admin")
    assert _roles(app)[ANA] == ("finance", False) and _roles(app)[BOB] == ("auditor", True)


def test_the_last_active_admin_is_neither_demoted_nor_disabled(app: Engine) -> None:
    with pytest.raises(RuleViolationError, match="last active admin"):
        set_role(app, ADMIN, ADMIN, "finance")
    with pytest.raises(RuleViolationError, match="last active admin"):
        disable_user(app, ADMIN, ADMIN)

    add_user(app, ADMIN, ANA, "admin", tenants=["acme"])
    assert set_role(app, ADMIN, ADMIN, "finance").user.role is Role.FINANCE  # ana remains
    with pytest.raises(PermissionDeniedError, match="admins only"):
        set_role(app, ADMIN, ADMIN, "admin")  # root is finance now and manages nothing

    add_user(app, ANA, BOB, "admin", tenants=["acme"])
    disable_user(app, ANA, BOB)  # a disabled admin does not count
    with pytest.raises(RuleViolationError, match="last active admin"):
        set_role(app, ANA, ANA, "auditor")
    with pytest.raises(RuleViolationError, match="last active admin"):
        disable_user(app, ANA, ANA)
    assert set_role(app, ANA, BOB, "finance").changed  # a disabled admin may change
    assert enable_user(app, ANA, BOB).active

    roles = _roles(app)
    assert roles == {
        ADMIN: ("finance", True),
        ANA: ("admin", True),
        BOB: ("finance", True),
    }


def test_an_oidc_sign_in_does_not_demote_the_last_active_admin(app: Engine) -> None:
    issuer = "https://login.acme.test"
    mapping = IdentityMapping(rules=(IdentityRule(issuer, Role.FINANCE, group="staff"),))
    claims = {"iss": issuer, "email": ADMIN, "groups": ["staff"]}
    with pytest.raises(PermissionDeniedError, match=r"makes root@acme\.test finance, but they are"):
        actor_from_identity(app, claims, mapping)
    assert _roles(app)[ADMIN] == ("admin", True)

    add_user(app, ADMIN, ANA, "admin", tenants=["acme"])
    assert actor_from_identity(app, claims, mapping).role is Role.FINANCE  # ana remains admin
    last = user_audit(app, "acme")[-1]
    assert (last.actor, last.action, last.details) == (
        f"oidc:{issuer}",
        "user.role_changed",
        {"email": ADMIN, "before": "admin", "after": "finance"},
    )


def test_a_broken_role_change_is_one_sentence(app: Engine) -> None:
    with pytest.raises(NotFoundError, match=r"no user 'ghost@acme\.test'"):
        set_role(app, ADMIN, "ghost@acme.test", "finance")
    with pytest.raises(ConfigError, match="unknown role 'boss'"):
        set_role(app, ADMIN, ADMIN, "boss")


# -- the CLI ---------------------------------------------------------------------------------------


def test_cli_role_changes_a_role_and_refuses_with_exit_codes(
    app: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(app, ADMIN, ANA, "finance", tenants=["acme"])
    code, out, err = cli(capsys, "user", "role", ANA, "--role", "auditor", "--as", ADMIN)
    assert (code, err) == (0, "")
    assert f"user {ANA} (auditor; acme) is now auditor (was finance)" in out
    code, out, _ = cli(capsys, "user", "role", ANA, "--role", "auditor", "--as", ADMIN)
    assert code == 0 and "already auditor" in out
    assert user_audit(app, "acme")[-1].actor == ADMIN

    code, _, err = cli(capsys, "user", "role", ADMIN, "--role", "admin", "--as", ANA)
    assert code == 13 and "admins only" in err and "Traceback" not in err
    monkeypatch.setenv("RECON_USER", ADMIN)
    code, _, err = cli(capsys, "user", "role", ADMIN, "--role", "finance")
    assert code == 15 and "last active admin" in err
    code, _, err = cli(capsys, "user", "role", ANA, "--role", "boss")
    assert code == 2 and "unknown role" in err
    code, _, err = cli(capsys, "user", "role", "ghost@acme.test", "--role", "finance")
    assert code == 5 and "no user" in err
    assert _roles(app)[ANA] == ("auditor", True)


# -- races between processes -----------------------------------------------------------------------


def _slowed(name: str) -> None:
    """Make `recon.review.users.<name>` wait SLOW seconds after it has read, so that a racer
    without a lock would decide on what the other is about to change."""
    import recon.review.users as users

    real: Callable[..., Any] = getattr(users, name)

    def slow(*args: Any) -> Any:
        found = real(*args)
        time.sleep(SLOW)
        return found

    setattr(users, name, slow)


def _racer(argv: list[str], slowed: str, start: Any, results: Any) -> None:
    """A separate process: `recon ARGV`, started with the other racer; puts (argv, code, err)."""
    from apps.cli.main import main

    _slowed(slowed)
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(), io.StringIO(), io.StringIO()
    start.wait(timeout=120)
    code = main(argv)
    results.put((argv, code, sys.stderr.getvalue()))


def _race(*commands: list[str], slowed: str) -> list[tuple[list[str], int, str]]:
    """Run each command in its own process, released at once; their results, by exit code."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(len(commands)), context.Queue()
    racers = [
        context.Process(target=_racer, args=(argv, slowed, start, results)) for argv in commands
    ]
    for racer in racers:
        racer.start()
    found = [results.get(timeout=180) for _ in racers]
    for racer in racers:
        racer.join(timeout=60)
        assert racer.exitcode == 0
    return sorted(found, key=lambda result: result[1])


def test_two_processes_bootstrapping_at_once_make_one_admin(backend: Backend) -> None:
    first, second = _race(
        ["user", "add", ANA, "--role", "admin", "--tenant", "acme"],
        ["user", "add", BOB, "--role", "admin", "--tenant", "acme"],
        slowed="_has_active_admin",
    )
    assert first[1] == 0
    _, code, err = second
    assert code == 13, err
    assert "there is already an active admin" in err and "--as EMAIL" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err

    winner = first[0][2]
    assert _roles(backend.app) == {winner: ("admin", True)}
    added = [(e.actor, e.action, e.entity_id) for e in user_audit(backend.app, "acme")]
    assert added == [("bootstrap", "user.added", winner)]


def test_two_admins_demoting_each_other_at_once_leave_one(app: Engine) -> None:
    add_user(app, ADMIN, ANA, "admin", tenants=["acme"])
    first, second = _race(
        ["user", "role", ANA, "--role", "finance", "--as", ADMIN],
        ["user", "role", ADMIN, "--role", "finance", "--as", ANA],
        slowed="active_admin_count",
    )
    assert first[1] == 0, (first, second)
    # the loser is no admin any more when its turn comes, or would demote the last one
    assert second[1] in (13, 15), second
    assert "admins only" in second[2] or "last active" in second[2], second
    roles = _roles(app)
    assert sorted(role for role, _ in roles.values()) == ["admin", "finance"], roles
    changes = [(e.actor, e.entity_id) for e in user_audit(app, "acme")
               if e.action == "user.role_changed"]  # fmt: skip
    assert len(changes) == 1 and changes[0][0] in (ADMIN, ANA), changes


def test_an_admin_disabled_while_demoting_the_other_leaves_one(app: Engine) -> None:
    add_user(app, ADMIN, ANA, "admin", tenants=["acme"])
    first, second = _race(
        ["user", "disable", ANA, "--as", ADMIN],
        ["user", "role", ADMIN, "--role", "auditor", "--as", ANA],
        slowed="active_admin_count",
    )
    assert first[1] == 0 and second[1] in (13, 15), second
    active_admins = [e for e, (role, on) in _roles(app).items() if role == "admin" and on]
    assert len(active_admins) == 1
