"""`recon ui`: serve the Streamlit ops UI (`streamlit run ui/app.py`) with the project's settings.

In production the UI signs people in only through OpenID Connect: before Streamlit starts, the
`[auth]` section of `.streamlit/secrets.toml` is written (mode 0600, never logged) from Vault
(`ui_cookie_secret`, `ui_oidc_client_secret`) and the provider's public settings; without them the
command refuses to start. The file is removed again when the UI stops.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from apps.cli.context import console, runtime
from recon.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "ui" / "app.py"
SECRETS_FILE = ROOT / ".streamlit" / "secrets.toml"
PROVIDER = "oidc"


def streamlit_command(port: int, address: str) -> list[str]:
    """The `streamlit run` command line for the ops UI on `address:port`."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.port", str(port),
        "--server.address", address,
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip


def _toml_string(value: str) -> str:
    # a JSON string of printable text is a valid TOML basic string
    return json.dumps(value, ensure_ascii=True)


def auth_section(
    *, redirect_uri: str, cookie_secret: str, client_id: str, client_secret: str, metadata_url: str
) -> str:
    """The `[auth]` TOML Streamlit's `st.login()` reads, with one provider."""
    return "\n".join(
        [
            "[auth]",
            f"redirect_uri = {_toml_string(redirect_uri)}",
            f"cookie_secret = {_toml_string(cookie_secret)}",
            f"client_id = {_toml_string(client_id)}",
            f"client_secret = {_toml_string(client_secret)}",
            f"server_metadata_url = {_toml_string(metadata_url)}",
            "",
        ]
    )


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by the owner only (0600, also when it existed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


@contextmanager
def production_secrets(public_url: str | None, client_id: str | None,
                       metadata_url: str | None) -> Iterator[None]:  # fmt: skip
    """Write the `[auth]` section from Vault for the UI's lifetime, or refuse to start."""
    from recon.secrets import UI_COOKIE_SECRET, UI_OIDC_CLIENT_SECRET

    missing = [
        name
        for name, value in (
            ("--public-url (RECON_UI_PUBLIC_URL)", public_url),
            ("--oidc-client-id (RECON_UI_OIDC_CLIENT_ID)", client_id),
            ("--oidc-metadata-url (RECON_UI_OIDC_METADATA_URL)", metadata_url),
        )
        if not value
    ]
    if missing:
        raise ConfigError(
            "the ops UI does not start in production without OpenID Connect: set "
            + ", ".join(missing)
        )
    assert public_url and client_id and metadata_url
    secrets = runtime().secrets
    text = auth_section(
        redirect_uri=public_url.rstrip("/") + "/oauth2callback",
        cookie_secret=secrets.get(UI_COOKIE_SECRET),
        client_id=client_id,
        client_secret=secrets.get(UI_OIDC_CLIENT_SECRET),
        metadata_url=metadata_url,
    )
    write_private(SECRETS_FILE, text)
    try:
        yield
    finally:
        SECRETS_FILE.unlink(missing_ok=True)


def ui_command(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8501,
    address: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    public_url: Annotated[
        str | None,
        typer.Option(envvar="RECON_UI_PUBLIC_URL", help="Production: the URL people open."),
    ] = None,
    oidc_client_id: Annotated[
        str | None,
        typer.Option(envvar="RECON_UI_OIDC_CLIENT_ID", help="Production: OIDC client id."),
    ] = None,
    oidc_metadata_url: Annotated[
        str | None,
        typer.Option(
            envvar="RECON_UI_OIDC_METADATA_URL", help="Production: the provider's .well-known URL."
        ),
    ] = None,
) -> int:
    """Serve the ops UI until interrupted (development: a login form; production: OIDC only)."""
    settings = runtime().settings
    runtime().checked_engine()  # refuse a database that is not at head before serving anything
    command = streamlit_command(port, address)
    console.print(f"the ops UI serves at http://{address}:{port}/ (Ctrl-C stops it)")
    if settings.is_production:
        with production_secrets(public_url, oidc_client_id, oidc_metadata_url):
            return subprocess.run(command, cwd=ROOT, check=False).returncode  # noqa: S603
    return subprocess.run(command, cwd=ROOT, check=False).returncode  # noqa: S603


# -- the demo's UI ----------------------------------------------------------------------------------

DEMO_USERS = (("admin@demo.test", "admin"), ("finance@demo.test", "finance"))


def demo_logins(engine: object, tenant: str) -> list[tuple[str, str, str]]:
    """(email, role, password) of the demo's admin and finance users, each with a new random
    password (never a fixed default); made on the first demo, their passwords reset after."""
    import secrets

    from sqlalchemy import Engine

    from recon.db.tenancy import admin_session
    from recon.review import users

    assert isinstance(engine, Engine)
    admin = DEMO_USERS[0][0]
    logins = []
    for email, role in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        with admin_session(engine) as session:
            exists = users.find_user(session, email) is not None
        if exists:
            users.set_password(engine, admin, email, password)
            if tenant not in users.granted_tenants(engine, email):
                users.grant_tenant(engine, admin, email, tenant)
        else:
            acting = None if email == admin else admin
            users.add_user(engine, acting, email, role, tenants=(tenant,), password=password)
        logins.append((email, role, password))
    return logins


def serve_demo_ui(env: dict[str, str], port: int, *, interactive: bool) -> int:
    """Serve the UI for the demo: until Ctrl-C when a person is at the terminal; otherwise
    (CI, `make demo` without a terminal) only until it answers, so the demo still ends."""
    import time
    import urllib.request

    process = subprocess.Popen(  # noqa: S603
        streamlit_command(port, "127.0.0.1"),
        cwd=ROOT,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(240):  # up to two minutes for Streamlit to import and listen
            if process.poll() is not None:
                raise ConfigError(f"the ops UI stopped at start (exit {process.returncode})")
            try:
                with urllib.request.urlopen(url + "_stcore/health", timeout=2):  # noqa: S310
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise ConfigError("the ops UI did not answer within two minutes")
        console.print(f"the ops UI serves the demo at {url}")
        if not interactive:
            console.print("no terminal: the UI answered and is stopped again; `recon ui` serves it")
            return 0
        console.print("Ctrl-C stops it")
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
