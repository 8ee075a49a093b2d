"""`recon webhooks serve`: the receiver that turns signed provider events into Prefect events.

Verified events are stored before they are acknowledged and emitted to Prefect by the receiver's
emitter until Prefect takes them; a restarted receiver resumes what is left. Event ids are kept
forever, so a replayed delivery (GoCardless signs no timestamp) is acknowledged and does nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from apps.cli.context import console, runtime
from recon.errors import ConfigError

app = typer.Typer(help="Provider webhooks (Stripe, GoCardless).", no_args_is_help=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8088,
    ssl_certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
) -> None:
    """Serve POST /webhooks/stripe/{tenant} and /webhooks/gocardless/{tenant}."""
    from apps.webhooks.app import ReceiverConfig, build_receiver
    from apps.webhooks.prefect_events import PrefectEventSink

    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise ConfigError("--ssl-certfile and --ssl-keyfile go together")
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise ConfigError(
            "PREFECT_API_URL is not set: the receiver hands events to the Prefect server that "
            "runs the event-triggered deployment, so point it there"
        )
    rt = runtime()
    if rt.settings.is_production and ssl_certfile is None and host not in {"127.0.0.1", "::1"}:
        raise ConfigError(
            "in production the receiver serves TLS itself (--ssl-certfile/--ssl-keyfile) or "
            "listens on loopback behind a TLS proxy"
        )
    api_key = PREFECT_API_KEY.value()
    auth_string = PREFECT_API_AUTH_STRING.value()
    sink = PrefectEventSink(
        PREFECT_API_URL.value(),
        api_key=api_key.get_secret_value() if api_key else None,
        auth_string=auth_string.get_secret_value() if auth_string else None,
    )
    config = ReceiverConfig(rt.checked_engine(), rt.secrets, sink)
    console.print(f"webhook receiver on {'https' if ssl_certfile else 'http'}://{host}:{port}")
    uvicorn.run(
        build_receiver(config),
        host=host,
        port=port,
        log_config=None,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )
