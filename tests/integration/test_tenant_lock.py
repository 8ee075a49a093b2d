"""Two runs of one tenant never write at the same time; other tenants are not held up."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import Engine

from recon.locks import TenantBusyError, tenant_lock


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    name = "sqlite_engine" if request.param == "sqlite" else "pg_owner_engine"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


def test_second_holder_is_refused_until_the_first_lets_go(engine: Engine) -> None:
    with tenant_lock(engine, "acme"):
        with (
            pytest.raises(TenantBusyError, match="another run for tenant 'acme'"),
            tenant_lock(engine, "acme"),
        ):
            pass
        with tenant_lock(engine, "other"):
            pass  # another tenant runs freely
    with tenant_lock(engine, "acme"):
        pass  # released


def test_a_killed_holder_releases_the_lock(engine: Engine) -> None:
    """The lock dies with its process (SIGKILL leaves nothing to clean up)."""
    url = engine.url.render_as_string(hide_password=False)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from recon.db.engine import make_engine
                from recon.locks import tenant_lock
                with tenant_lock(make_engine({url!r}), "acme"):
                    print("held", flush=True)
                    time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(TenantBusyError), tenant_lock(engine, "acme"):
            pass
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 10
    while True:
        try:
            with tenant_lock(engine, "acme"):
                break
        except TenantBusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
