"""The `recon` command line. User errors are one sentence on stderr and a non-zero exit."""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from apps.cli import audit, automations, bank, db, exceptions, runs, sandbox, tenant, webhooks
from apps.cli.allocate import allocate_command, suggestions_app, unallocate_command
from apps.cli.apply import apply_command
from apps.cli.backfill import backfill_command
from apps.cli.context import err_console, reset_runtime, runtime
from apps.cli.demo import demo_command
from apps.cli.export import app as export_app
from apps.cli.match import match_command
from apps.cli.run import run_command
from apps.cli.ui import ui_command
from apps.cli.users import app as users_app
from recon.errors import ConfigError, ReconError
from recon.logs import configure_logging, remove_handler
from recon.redaction import redact

# Prefect's temporary local server would try to send usage telemetry over a network that
# may not exist; an operator who wants it can set the variable explicitly.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

app = typer.Typer(
    name="recon",
    help="Payment reconciliation for businesses that bill with WHMCS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(tenant.app, name="tenant")
app.add_typer(audit.app, name="audit")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(automations.app, name="automations")
app.add_typer(runs.app, name="runs")
app.add_typer(suggestions_app, name="suggestions")
app.add_typer(exceptions.app, name="exceptions")
app.add_typer(users_app, name="user")
app.add_typer(export_app, name="export")
app.add_typer(bank.app, name="bank")

log = logging.getLogger("apps.cli")
INTERRUPTED = 130


@app.callback()
def _setup(
    log_format: Annotated[
        str | None, typer.Option("--log-format", help="human or json (RECON_LOG_FORMAT).")
    ] = None,
) -> None:
    settings = runtime().settings
    fmt = log_format or settings.log_format
    if fmt not in {"human", "json"}:
        raise ConfigError(f"--log-format must be human or json, not {fmt!r}")
    handler = configure_logging(settings.log_level, fmt)
    if fmt == "human" and settings.log_level != "DEBUG":
        handler.addFilter(QuietReconFailures())


class QuietReconFailures(logging.Filter):
    """Keep Prefect's report of a run that failed with a `ReconError` off a person's terminal.

    Prefect logs such a failure as a traceback and restates it in "Finished in state Failed"
    lines; the command then prints it as its one sentence. With `RECON_LOG_LEVEL=DEBUG` (or
    JSON logs) everything is kept.
    """

    _ENGINE_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self._ENGINE_LOGGERS):
            return True
        if record.exc_info and isinstance(record.exc_info[1], ReconError):
            return False
        message = str(record.msg)
        return not (message.startswith("Finished in state Failed(") and _names_recon_error(message))


def _names_recon_error(message: str) -> bool:
    """Whether a Prefect state message names a `ReconError` (as `SomeError: text`)."""
    pending, names = [ReconError], set()
    while pending:
        cls = pending.pop()
        names.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return any(f"{name}: " in message for name in names)


@app.command("doctor")
def doctor_command() -> None:
    """Check the database is at head, Vault is reachable and every needed secret resolves."""
    from apps.cli import doctor

    doctor.doctor(runtime())


app.command("demo")(demo_command)
app.command("run")(run_command)
app.command("match")(match_command)
app.command("apply")(apply_command)
app.command("backfill")(backfill_command)
app.command("allocate")(allocate_command)
app.command("unallocate")(unallocate_command)
app.command("ui")(ui_command)


def _fail(message: str, code: int) -> int:
    err_console.print(f"[bold red]error:[/bold red] {redact(message)}", highlight=False)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; never shows a traceback for a user error."""
    try:
        result = app(args=argv, prog_name="recon", standalone_mode=False)
        if result == INTERRUPTED:  # Typer turns Ctrl-C into this return value, silently
            return _fail("interrupted", INTERRUPTED)
        return result if isinstance(result, int) else 0
    except ReconError as exc:
        return _fail(str(exc), exc.exit_code)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        return _fail("interrupted", INTERRUPTED)
    except typer.TyperException as exc:  # usage errors of Typer's bundled click
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]
            return 2
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        return _fail(message, int(getattr(exc, "exit_code", 2)))
    except Exception as exc:  # a bug: say so in one line, keep the traceback in the log
        log.debug("unhandled error", exc_info=True)
        return _fail(
            f"internal error ({type(exc).__name__}); rerun with RECON_LOG_LEVEL=DEBUG for details",
            70,
        )
    finally:
        reset_runtime()
        remove_handler()  # its stream may not outlive this call (tests, embedding)


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main())
