"""`recon audit`: verify, anchor and seal the keyed, hash-chained audit log."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from apps.cli.context import console, current_actor, runtime
from recon.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from recon.audit import Anchor, ChainKey

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


def _chain_key() -> ChainKey:
    """The configured chain key, resolved before any work (a missing key stops the command)."""
    from recon.audit import resolve_chain_key

    return resolve_chain_key(runtime().secrets)


def _read_anchor(path: Path) -> Anchor:
    from recon.audit import Anchor, AnchorFileError

    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"anchor file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AnchorFileError(f"anchor file {path} cannot be read: {exc}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise AnchorFileError(f"anchor file {path} is not JSON (line {exc.lineno})") from None
    try:
        return Anchor.from_dict(data)
    except AnchorFileError as exc:
        raise AnchorFileError(f"anchor file {path} is not a valid anchor: {exc}") from None


@app.command()
def verify(
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant (default: every tenant).")
    ] = None,
    anchor: Annotated[
        Path | None,
        typer.Option(help="Also check that the chain still holds what this anchor file saw."),
    ] = None,
) -> None:
    """Walk each tenant's chain and name the first broken entry (exit 7 when one is broken)."""
    from recon.audit import AuditChainBrokenError, check_anchor, verify_chain
    from recon.db.tenancy import admin_session, tenant_session
    from recon.tenants import get_tenant, list_tenants

    key = _chain_key()
    engine = runtime().checked_engine()
    if anchor is not None:
        seen = _read_anchor(anchor)
        if tenant is not None and tenant != seen.tenant_id:
            raise ConfigError(
                f"anchor file {anchor} is for tenant {seen.tenant_id!r}, not {tenant!r}"
            )
        with admin_session(engine) as session:
            get_tenant(session, seen.tenant_id)
        with tenant_session(engine, seen.tenant_id) as session:
            check = check_anchor(session, seen, key)
        if check.problem is not None:
            console.print(f"[red]{seen.tenant_id}: anchor check failed[/red]")
            raise AuditChainBrokenError(
                f"audit chain of tenant {seen.tenant_id} fails anchor {anchor}: {check.problem}"
            )
        entries = check.report.entries if check.report else 0
        console.print(
            f"{seen.tenant_id}: {entries} entries verified; anchored entry seq {seen.seq} "
            f"({seen.head_hash[:16]}) is still in the chain"
        )
        return
    with admin_session(engine) as session:
        tenant_ids = (
            [get_tenant(session, tenant).id] if tenant else [t.id for t in list_tenants(session)]
        )
    broken = []
    for tenant_id in tenant_ids:
        with tenant_session(engine, tenant_id) as session:
            report = verify_chain(session, tenant_id, key)
        if report.ok:
            console.print(
                f"{tenant_id}: {report.entries} entries verified, head {report.head_hash[:16]}"
            )
        else:
            console.print(f"[red]{tenant_id}: chain broken[/red]")
            broken.append(report)
    if broken:
        first = broken[0].first_break
        raise AuditChainBrokenError(f"audit chain broken at {first}")
    if not tenant_ids:
        console.print("no tenants, nothing to verify")


def _write_atomically(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@app.command("anchor")
def anchor_command(
    tenant: Annotated[str, typer.Option(help="The tenant whose chain head to anchor.")],
    out: Annotated[Path, typer.Option(help="Where to write the signed anchor (JSON).")],
) -> None:
    """Verify the tenant's chain and write a signed anchor of its head, to keep elsewhere."""
    from recon.audit import AuditChainBrokenError, anchor_for, verify_chain
    from recon.db.tenancy import admin_session, tenant_session
    from recon.tenants import get_tenant

    key = _chain_key()
    engine = runtime().checked_engine()
    with admin_session(engine) as session:
        get_tenant(session, tenant)
    with tenant_session(engine, tenant) as session:
        report = verify_chain(session, tenant, key)
        if report.first_break is not None:
            raise AuditChainBrokenError(
                f"audit chain broken at {report.first_break}; a broken chain is not anchored"
            )
        signed = anchor_for(session, tenant, key)
    if signed.seq != report.head_seq:  # pragma: no cover - one transaction sees one chain
        raise AuditChainBrokenError(f"tenant {tenant}'s chain changed while it was anchored")
    try:
        _write_atomically(out, signed.to_json())
    except OSError as exc:
        raise ConfigError(f"cannot write the anchor to {out}: {exc.strerror or exc}") from None
    console.print(
        f"{tenant}: anchored entry seq {signed.seq} ({signed.head_hash[:16]}) to {out}; "
        "keep it outside the database"
    )


@app.command()
def seal(
    tenant: Annotated[str, typer.Option(help="The tenant whose unkeyed entries to bind.")],
) -> None:
    """Bind entries written before the chain was keyed with one keyed entry (after upgrading)."""
    from recon.audit import AuditChainBrokenError, append, verify_chain
    from recon.db.tenancy import admin_session, tenant_session
    from recon.tenants import get_tenant

    key = _chain_key()
    engine = runtime().checked_engine()
    with admin_session(engine) as session:
        get_tenant(session, tenant)
    with tenant_session(engine, tenant) as session:
        report = verify_chain(session, tenant, key)
        if report.first_break is None:
            console.print(f"{tenant}: the chain already ends in a keyed entry; nothing to seal")
            return
        if report.first_break.kind != "unkeyed":
            # Sealing binds what is there: never over a broken or emptied chain.
            raise AuditChainBrokenError(
                f"audit chain broken at {report.first_break}; it is not sealed"
            )
        entry = append(
            session,
            actor=current_actor(),
            action="audit.chain_keyed",
            entity="audit_log",
            entity_id=tenant,
            details={"sealed_seq": report.head_seq, "key_id": key.key_id},
            key=key,
        )
    console.print(f"{tenant}: sealed the unkeyed entries with keyed entry seq {entry.seq}")
