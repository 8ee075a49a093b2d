"""`recon ui`: the command line it runs, and production's OIDC secrets written privately (and
removed), or a refusal that names what is missing."""

from __future__ import annotations

import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from apps.cli import ui
from recon.errors import ConfigError
from recon.secrets import UI_COOKIE_SECRET, UI_OIDC_CLIENT_SECRET

VALUES = {UI_COOKIE_SECRET.name: "cookie-" + "c" * 40, UI_OIDC_CLIENT_SECRET.name: 'cl"ient'}


def test_the_command_serves_ui_app_on_the_given_port() -> None:
    argv = ui.streamlit_command(8765, "127.0.0.1")
    assert argv[1:4] == ["-m", "streamlit", "run"]
    assert argv[4].endswith("ui/app.py")
    assert argv[argv.index("--server.port") + 1] == "8765"


def test_production_without_oidc_settings_refuses_to_start() -> None:
    with (
        pytest.raises(ConfigError, match=r"--oidc-client-id.*--oidc-metadata-url"),
        ui.production_secrets("https://recon.example", None, None),
    ):
        pass


def test_production_writes_auth_from_vault_privately_and_removes_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets_file = tmp_path / ".streamlit" / "secrets.toml"
    resolver = SimpleNamespace(get=lambda spec, tenant=None: VALUES[spec.name])
    monkeypatch.setattr(ui, "SECRETS_FILE", secrets_file)
    monkeypatch.setattr(ui, "runtime", lambda: SimpleNamespace(secrets=resolver))
    with ui.production_secrets(
        "https://recon.example/", "recon-ui", "https://idp.example/.well-known/openid-configuration"
    ):
        assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
        import tomllib

        auth = tomllib.loads(secrets_file.read_text())["auth"]
        assert auth == {
            "redirect_uri": "https://recon.example/oauth2callback",
            "cookie_secret": VALUES[UI_COOKIE_SECRET.name],
            "client_id": "recon-ui",
            "client_secret": 'cl"ient',
            "server_metadata_url": "https://idp.example/.well-known/openid-configuration",
        }
    assert not secrets_file.exists()


def test_provider_text_is_made_inert_for_markdown() -> None:
    from ui.components import plain

    shown = plain("Pay [here](https://evil.example) ![x](https://evil.example/i.png) <b>")
    assert "](" not in shown.replace("\\](", "").replace("\\(", "")
    assert shown.count("\\[") == 2 and "\\<b\\>" in shown
