"""`recon sandbox serve`: every fake provider on one port, seeded from a synthetic world.

The sandbox serves WHMCS (`/includes/api.php`), Stripe (`/v1/...`), GoCardless Bank Account Data
(`/api/v2/...`), GoCardless Payments (`/gocardless-payments/...`) and Vault (`/v1/sys`,
`/v1/auth`, `/v1/secret/data/...`) under their real paths, from a world of `--invoices` invoices
issued over the `--days` days up to today (seed `--seed`), as it stands today. At every start it
generates new credentials, puts the tenant's in the sandbox Vault, and writes them with the Vault
AppRole ids to `<data dir>/sandbox/credentials.json` (mode 0600) so a developer can point a tenant
at it; the tenant's non-secret settings go to `<data dir>/sandbox/tenant-<tenant>.json`. These are
sandbox credentials, not application secrets. SIGINT or SIGTERM stops it.

Fault specs (`--fault SPEC`, repeatable), each added to the named providers' fault plans:

    PROVIDER:FAULT[:OPTION=VALUE]...     (options separated by ':' or ',')

PROVIDER  `whmcs`, `stripe`, `gocardless` (Bank Account Data), `gocardless-payments`, or `all`
          (those four; Vault takes no faults).
FAULT     a status code 400-599 (`429` answers with `Retry-After`), `timeout` (answers after
          `delay`, 35 s by default: longer than the connectors' 30 s read timeout), `slow` (after
          `delay`, 2 s by default), `truncate` (the body cut to `keep` of its bytes), `reset` (half
          the body, then the connection closes), `malform` (records of Stripe's balance
          transactions or the bank's booked lines lose their amount, or `what=` another
          malformation; Stripe and GoCardless only), `expired-consent` (every bank account's
          consent has expired; GoCardless only, no options).
OPTIONS   `count=N` fire N times then stop; `rate=P` fire on a share P (0-1) of the requests, drawn
          from a generator seeded by `--seed`; `skip=N` let the first N matching requests through;
          `path=GLOB` only requests whose path matches (fnmatch); `method=GET`; `action=NAME` only
          this WHMCS API action; `delay=S` seconds (timeout, slow, or before an error status);
          `retry-after=S` (429); `after=yes` process the request, then answer the error status;
          `keep=F` (truncate, 0-1); `what=NAME` and `limit=N` records (malform).
          Without `count` or `rate` a fault answers every matching request.

Examples: `stripe:429:rate=0.1`, `gocardless:timeout:count=2`, `whmcs:500`,
`all:truncate:rate=0.05`, `whmcs:503:action=GetInvoices:count=1`, `gocardless:expired-consent`.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from apps.cli.context import runtime
from recon.errors import ConfigError
from recon.tenants import validate_tenant_id

if TYPE_CHECKING:
    from connectors.sandbox.faults import FaultPlan
    from connectors.sandbox.world import SandboxWorld

app = typer.Typer(
    help="Local fake providers (WHMCS, Stripe, GoCardless, Vault) serving a synthetic world.",
    no_args_is_help=True,
)

PROVIDER_NAMES = {
    "whmcs": ("whmcs",),
    "stripe": ("stripe",),
    "gocardless": ("gocardless",),
    "gocardless-payments": ("gocardless_payments",),
    "gocardless_payments": ("gocardless_payments",),
    "all": ("whmcs", "stripe", "gocardless", "gocardless_payments"),
}
KINDS = ("timeout", "slow", "truncate", "reset", "malform", "expired-consent")
TIMEOUT_DELAY = 35.0
SLOW_DELAY = 2.0
_COMMON = frozenset({"count", "rate", "skip", "path", "method", "action"})
_KIND_OPTIONS: dict[str, frozenset[str]] = {
    "status": _COMMON | {"delay", "after", "retry-after"},
    "timeout": _COMMON | {"delay"},
    "slow": _COMMON | {"delay"},
    "truncate": _COMMON | {"keep"},
    "reset": _COMMON,
    "malform": _COMMON | {"what", "limit"},
    "expired-consent": frozenset(),
}
_HELP_HINT = "see `recon sandbox serve --help` for the grammar"
_FAULT_HELP = "A fault, PROVIDER:FAULT[:OPTION=VALUE]... (grammar above); repeatable."


@dataclass(frozen=True)
class FaultSpec:
    """One parsed `--fault`: the providers it disturbs, what it does, and its options."""

    text: str
    providers: tuple[str, ...]
    kind: str
    status: int | None = None
    options: dict[str, str] = field(default_factory=dict)


def _bad(spec: str, why: str) -> ConfigError:
    return ConfigError(f"fault spec {spec!r} is not valid: {why}; {_HELP_HINT}")


def parse_fault(spec: str) -> FaultSpec:
    """Parse one fault spec (see the module docstring); ConfigError names what is wrong."""
    parts = [p.strip() for p in spec.replace(",", ":").split(":")]
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise _bad(spec, "it needs at least PROVIDER:FAULT")
    provider, fault, *rest = parts
    providers = PROVIDER_NAMES.get(provider.lower())
    if providers is None:
        raise _bad(spec, f"unknown provider {provider!r} (use {', '.join(_provider_choices())})")
    status: int | None = None
    if fault.isdigit():
        status = int(fault)
        if not 400 <= status <= 599:
            raise _bad(spec, f"status {status} is not an error status (400-599)")
        kind = "status"
    elif fault.lower() in KINDS:
        kind = fault.lower()
    else:
        raise _bad(
            spec, f"unknown fault {fault!r} (use a status 400-599 or one of {', '.join(KINDS)})"
        )
    options: dict[str, str] = {}
    for part in rest:
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip().lower().replace("_", "-")
        if not sep or not value.strip():
            raise _bad(spec, f"option {part!r} is not of the form NAME=VALUE")
        if name not in _KIND_OPTIONS[kind]:
            allowed = ", ".join(sorted(_KIND_OPTIONS[kind])) or "none"
            raise _bad(spec, f"option {name!r} does not apply to {fault} (options: {allowed})")
        options[name] = value.strip()
    found = FaultSpec(spec, providers, kind, status, options)
    _check(found)
    return found


def _provider_choices() -> list[str]:
    return [name for name in PROVIDER_NAMES if name != "gocardless_payments"]


def _check(spec: FaultSpec) -> None:
    """Validate the options' values and the provider/fault combination."""
    o = spec.options
    for name in ("count", "skip", "limit"):
        if name in o:
            _integer(spec, name, minimum=1 if name != "skip" else 0)
    for name, low, high in (("rate", 0.0, 1.0), ("keep", 0.0, 0.999999)):
        if name in o:
            _fraction(spec, name, low, high)
    if "delay" in o and _number(spec, "delay") < 0:
        raise _bad(spec.text, "delay must not be negative")
    if "retry-after" in o:
        if spec.status != 429:
            raise _bad(spec.text, "retry-after goes with status 429")
        if o["retry-after"].lower() != "none":
            _integer(spec, "retry-after", minimum=0)
    if "after" in o and o["after"].lower() not in ("yes", "no", "true", "false", "1", "0"):
        raise _bad(spec.text, "after must be yes or no")
    if "path" in o and not o["path"].startswith(("/", "*")):
        raise _bad(spec.text, "path must start with / (or be a pattern starting with *)")
    if "action" in o and spec.providers != ("whmcs",):
        raise _bad(spec.text, "action= only applies to whmcs")
    if spec.kind == "expired-consent" and spec.providers != ("gocardless",):
        raise _bad(spec.text, "expired-consent only applies to gocardless")
    if spec.kind == "malform":
        targets = _malform_targets(spec)
        if not targets:
            raise _bad(
                spec.text,
                f"malform {o.get('what', 'missing_amount')!r} is available for "
                + "; ".join(f"{p}: {', '.join(sorted(m))}" for p, m in _malformations().items()),
            )


def _integer(spec: FaultSpec, name: str, *, minimum: int) -> int:
    try:
        value = int(spec.options[name])
    except ValueError:
        raise _bad(spec.text, f"{name} must be a whole number") from None
    if value < minimum:
        raise _bad(spec.text, f"{name} must be at least {minimum}")
    return value


def _number(spec: FaultSpec, name: str) -> float:
    try:
        return float(spec.options[name])
    except ValueError:
        raise _bad(spec.text, f"{name} must be a number") from None


def _fraction(spec: FaultSpec, name: str, low: float, high: float) -> float:
    value = _number(spec, name)
    if not low <= value <= high:
        raise _bad(spec.text, f"{name} must be between 0 and 1")
    return value


# -- applying faults -------------------------------------------------------------------------------

_MALFORM_RECORDS = {
    "stripe": (("data",), "/v1/balance_transactions"),
    "gocardless": (("transactions", "booked"), "/api/v2/accounts/*/transactions*"),
}


def _malformations() -> dict[str, Mapping[str, Callable[[dict[str, Any]], None]]]:
    from connectors.sandbox.gocardless import MALFORMATIONS as BANK
    from connectors.sandbox.stripe import MALFORMATIONS as STRIPE

    return {"stripe": STRIPE, "gocardless": BANK}


def _malform_targets(spec: FaultSpec) -> list[str]:
    what = spec.options.get("what", "missing_amount")
    available = _malformations()
    return [p for p in spec.providers if what in available.get(p, {})]


def apply_fault(spec: FaultSpec, sandbox: SandboxWorld) -> str:
    """Add the fault to the providers' plans (or state); returns a line describing it."""
    o = spec.options
    if spec.kind == "expired-consent":
        accounts = sandbox.bank.accounts
        for account in accounts:
            sandbox.gocardless.expire_consent(account.account_id)
        return f"{spec.text}: the consent of every bank account ({len(accounts)}) has expired"
    match: dict[str, Any] = {}
    if "count" in o:
        match["count"] = int(o["count"])
    if "rate" in o:
        match["rate"] = float(o["rate"])
    if "skip" in o:
        match["skip"] = int(o["skip"])
    if "method" in o:
        match["method"] = o["method"].upper()
    if "action" in o:
        match["params"] = {"action": o["action"]}
    targets = _malform_targets(spec) if spec.kind == "malform" else list(spec.providers)
    for provider in targets:
        plan = sandbox.faults[provider]
        rule_match = dict(match)
        if "path" in o:
            rule_match["path"] = o["path"]
        _add_rule(spec, plan, provider, rule_match)
    return f"{spec.text}: {_describe(spec, targets)}"


def _add_rule(spec: FaultSpec, plan: FaultPlan, provider: str, match: dict[str, Any]) -> None:
    o = spec.options
    if spec.kind == "status":
        assert spec.status is not None
        delay = float(o.get("delay", "0"))
        if spec.status == 429:
            retry = o.get("retry-after", "1")
            plan.rate_limit(None if retry.lower() == "none" else int(retry), delay=delay, **match)
        else:
            after = o.get("after", "no").lower() in ("yes", "true", "1")
            plan.status(spec.status, after=after, delay=delay, **match)
    elif spec.kind == "timeout":
        plan.timeout(float(o.get("delay", TIMEOUT_DELAY)), **match)
    elif spec.kind == "slow":
        plan.slow(float(o.get("delay", SLOW_DELAY)), **match)
    elif spec.kind == "truncate":
        plan.truncate(float(o.get("keep", "0.5")), **match)
    elif spec.kind == "reset":
        plan.reset(**match)
    else:  # malform
        records, path = _MALFORM_RECORDS[provider]
        match.setdefault("path", path)
        mutate = _malformations()[provider][o.get("what", "missing_amount")]
        plan.malform(mutate, records=records, limit=int(o.get("limit", "1")), **match)


def _describe(spec: FaultSpec, targets: list[str]) -> str:
    o = spec.options
    what = {
        "status": f"HTTP {spec.status}"
        + (
            f" with Retry-After {o.get('retry-after', '1')}"
            if spec.status == 429 and o.get("retry-after", "1").lower() != "none"
            else ""
        ),
        "timeout": f"answers after {o.get('delay', TIMEOUT_DELAY)} s (a read timeout)",
        "slow": f"answers after {o.get('delay', SLOW_DELAY)} s",
        "truncate": f"bodies cut to {o.get('keep', '0.5')} of their bytes",
        "reset": "connections closed mid-body",
        "malform": f"{o.get('limit', '1')} record(s) per answer {o.get('what', 'missing_amount')}",
    }[spec.kind]
    scope = []
    if "rate" in o:
        scope.append(f"on a share {o['rate']} of requests")
    if "count" in o:
        scope.append(f"{o['count']} time(s)")
    if "skip" in o:
        scope.append(f"after {o['skip']} request(s)")
    for name in ("path", "method", "action"):
        if name in o:
            scope.append(f"{name} {o[name]}")
    when = ", ".join(scope) or "every request"
    return f"{', '.join(t.replace('_', '-') for t in targets)}: {what}, {when}"


# -- serving ---------------------------------------------------------------------------------------


def _check_port(host: str, port: int) -> None:
    """Fail fast with one sentence if the address cannot be listened on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise _listen_error(host, port, exc) from None


def _listen_error(host: str, port: int, exc: OSError) -> ConfigError:
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(
            f"port {port} on {host} is already in use; stop what listens there or choose another "
            "port with --port"
        )
    reason = exc.strerror or type(exc).__name__
    return ConfigError(f"cannot listen on {host}:{port} ({reason}); check --host and --port")


def write_private_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write JSON readable by the owner only (mode 0600, also when the file existed)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write("\n")


@contextmanager
def _stop_on_signals() -> Iterator[list[str]]:
    """While inside, SIGINT and SIGTERM are recorded (by name) instead of interrupting."""
    received: list[str] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="TCP port (0: any free port).")
    ] = 8765,
    seed: Annotated[int, typer.Option(help="Seed of the world and of rate-based faults.")] = 7,
    invoices: Annotated[
        int, typer.Option(min=50, max=1_000_000, help="Invoices in the world.")
    ] = 2000,
    days: Annotated[
        int, typer.Option(min=1, max=3650, help="Days over which they are issued, up to today.")
    ] = 90,
    tenant: Annotated[str, typer.Option(help="Tenant whose secrets the Vault holds.")] = "demo",
    fault: Annotated[
        list[str] | None, typer.Option("--fault", "--faults", metavar="SPEC", help=_FAULT_HELP)
    ] = None,
) -> None:
    """Serve WHMCS, Stripe, GoCardless (bank data and payments) and Vault on one port.

    The world: INVOICES invoices issued over the DAYS days up to today (seed SEED) with their
    bank lines, card and direct-debit payments and payouts, as it stands today. At start it
    prints the URL and the faults, and writes fresh sandbox credentials and the Vault AppRole ids
    to <data dir>/sandbox/credentials.json (mode 0600). SIGINT or SIGTERM stops it.

    Faults (--fault, repeatable): PROVIDER:FAULT[:OPTION=VALUE]... PROVIDER is whmcs, stripe,
    gocardless, gocardless-payments or all. FAULT is a status 400-599 (429 sends Retry-After),
    timeout (answers after 35 s), slow (after 2 s), truncate, reset, malform (stripe,
    gocardless) or expired-consent (gocardless). OPTIONS: count=N, rate=P, skip=N, path=GLOB,
    method=M, action=NAME (whmcs), delay=S, retry-after=S, after=yes, keep=F, what=NAME, limit=N;
    without count or rate a fault hits every matching request. Examples: stripe:429:rate=0.1,
    gocardless:timeout:count=2, whmcs:500, all:truncate:rate=0.05.
    """
    began = time.monotonic()
    validate_tenant_id(tenant)
    specs = [parse_fault(text) for text in fault or []]
    _check_port(host, port)

    from connectors.sandbox.serve import run_in_thread
    from connectors.sandbox.world import SandboxWorld, world_ending

    today = datetime.now(UTC).date()
    with _stop_on_signals() as received:
        world = world_ending(today, n_invoices=invoices, days=days, seed=seed)
        sandbox = SandboxWorld(world, tenant=tenant, as_of=today, fault_seed=seed)
        applied = [apply_fault(spec, sandbox) for spec in specs]
        try:
            server = run_in_thread(sandbox.build_app(), host, port)
        except OSError as exc:
            raise _listen_error(host, port, exc) from None
        try:
            folder = runtime().settings.data_dir / "sandbox"
            credentials = folder / "credentials.json"
            write_private_json(credentials, sandbox.connection_document(server.url))
            settings_file = folder / f"tenant-{tenant}.json"
            settings_file.write_text(
                json.dumps(sandbox.tenant_settings(server.url), indent=2) + "\n", encoding="utf-8"
            )
            elapsed = time.monotonic() - began
            _banner(sandbox, server.url, credentials, settings_file, applied, elapsed)
            while not received:
                time.sleep(0.1)
            typer.echo(f"{received[0]}: stopping the sandbox")
        finally:
            server.stop()
    typer.echo("sandbox stopped")


def _banner(
    sandbox: SandboxWorld,
    url: str,
    credentials: Path,
    settings_file: Path,
    faults: list[str],
    elapsed: float,
) -> None:
    from connectors.sandbox.gocardless_payments import PREFIX

    counts = ", ".join(f"{v} {k}" for k, v in sandbox.summary().items())
    lines = [
        f"sandbox serving on {url} (ready in {elapsed:.2f} s)",
        f"world: as of {sandbox.as_of.isoformat()}: {counts}",
        f"  WHMCS                {url}/includes/api.php",
        f"  Stripe               {url}/v1/",
        f"  GoCardless bank data {url}/api/v2/",
        f"  GoCardless payments  {url}{PREFIX}",
        f"  Vault                {url} (AppRole; tenant secrets at "
        f"{sandbox.vault_mount}/{sandbox.vault_path})",
        f"credentials: {credentials} (mode 0600; sandbox credentials and Vault AppRole ids)",
        f"tenant settings: {settings_file} (recon tenant add {sandbox.tenant} --name ... "
        f"--settings-file {settings_file})",
    ]
    if faults:
        lines.append("faults:")
        lines += [f"  {line}" for line in faults]
    else:
        lines.append("faults: none (add some with --fault; see --help)")
    lines.append("press Ctrl-C (or send SIGTERM) to stop")
    for line in lines:
        typer.echo(line)
