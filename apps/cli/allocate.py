"""`recon allocate`, `recon unallocate`, `recon suggestions accept`: matching by hand.

Each command parses its arguments, calls one function of `recon.review.allocations` and prints
the typed result: a table for people, `--json` for scripts. The acting user comes from
`--as EMAIL` or RECON_USER; the service checks what they may do and every rule of the books.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from apps.cli.context import acting_user, console, runtime
from apps.cli.options import AsOption, JsonOption, TenantOption

if TYPE_CHECKING:
    from recon.review.allocations import AllocationView

suggestions_app = typer.Typer(
    help="The engine's suggestions (allocations it left for a person to accept).",
    no_args_is_help=True,
)

NoteOption = Annotated[str | None, typer.Option("--note", help="Why (kept with the rows).")]


def parse_part(text: str) -> tuple[str, Decimal]:
    """`INVOICE_ID=AMOUNT` (amount in major units, e.g. 12.50) as (invoice id, Decimal)."""
    invoice, sep, amount = text.partition("=")
    if not sep or not invoice.strip() or not amount.strip():
        raise typer.BadParameter(f"{text!r} is not INVOICE_ID=AMOUNT (e.g. 1042=12.50)")
    try:
        value = Decimal(amount.strip())
    except InvalidOperation:
        raise typer.BadParameter(f"{amount!r} is not a decimal amount (e.g. 12.50)") from None
    if not value.is_finite():
        raise typer.BadParameter(f"{amount!r} is not a finite amount")
    return invoice.strip(), value


def _jsonable(value: object) -> Any:
    """A result dataclass as JSON data; allocation amounts also as decimal strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(amount := getattr(value, "amount", None), str):
            data["amount"] = amount
        return data
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def _emit(value: object) -> None:
    typer.echo(json.dumps(_jsonable(value), sort_keys=True))


def _table(rows: list[AllocationView], title: str) -> Table:
    table = Table("id", "payment", "invoice", "amount", "currency", "rule", "decision",
                  "by", "reverses", title=title)  # fmt: skip
    for r in rows:
        table.add_row(str(r.id), r.transaction_ref, r.invoice_id, r.amount, r.currency, r.rule,
                      r.decision, r.created_by, str(r.reverses_id or ""))  # fmt: skip
    return table


def allocate_command(
    tenant: TenantOption,
    transaction: Annotated[
        str, typer.Option("--transaction", help="The payment: source:account:id, or its own id.")
    ],
    invoice: Annotated[
        list[str],
        typer.Option("--invoice", help="INVOICE_ID=AMOUNT (e.g. 1042=12.50); repeat for more."),
    ],
    note: NoteOption = None,
    as_user: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Allocate one payment to one or several invoices, by hand."""
    from recon.review.allocations import allocate

    parts = [parse_part(p) for p in invoice]
    acting = acting_user(as_user)
    result = allocate(runtime().checked_engine(), acting, tenant, transaction, parts, note)
    if as_json:
        _emit(result)
        return
    console.print(_table(list(result.allocations), f"allocated {result.transaction_ref}"))
    from recon.money import format_amount

    console.print(
        f"unallocated now {format_amount(result.unallocated_minor, result.currency)} "
        f"{result.currency}; exceptions resolved: "
        f"{', '.join(map(str, result.resolved_exception_ids)) or 'none'}"
    )


def unallocate_command(
    tenant: TenantOption,
    allocation: Annotated[int, typer.Option("--allocation", help="The allocation's id.")],
    note: NoteOption = None,
    as_user: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reverse an allocation (a reversal row; nothing is updated or deleted)."""
    from recon.review.allocations import unallocate

    acting = acting_user(as_user)
    result = unallocate(runtime().checked_engine(), acting, tenant, allocation, note)
    if as_json:
        _emit(result)
        return
    console.print(_table([result.reversal], f"reversed allocation {result.reversed_id}"))
    if result.writeback_exception_id is not None:
        console.print(
            f"WHMCS already records this payment: exception {result.writeback_exception_id} "
            "asks for it to be removed there"
        )


@suggestions_app.command("accept")
def accept_command(
    tenant: TenantOption,
    ids: Annotated[
        list[int] | None, typer.Option("--id", help="A suggestion's allocation id; repeatable.")
    ] = None,
    all_above: Annotated[
        int | None,
        typer.Option("--all-above", help="Every suggestion with at least this confidence."),
    ] = None,
    note: NoteOption = None,
    as_user: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Accept the engine's suggestions: each becomes a manual allocation (rules checked now)."""
    from recon.review.allocations import accept_suggestions

    if bool(ids) == (all_above is not None):
        raise typer.BadParameter("pass --id ALLOCATION_ID (repeatable) or --all-above CONFIDENCE")
    acting = acting_user(as_user)
    result = accept_suggestions(runtime().checked_engine(), acting, tenant,
                                allocation_ids=ids or None, min_confidence=all_above,
                                note=note)  # fmt: skip
    if as_json:
        _emit(result)
    else:
        accepted = [a.allocation for a in result.accepted]
        console.print(_table(accepted, f"accepted {len(accepted)} suggestion(s)"))
        for refusal in result.refused:
            console.print(f"refused {refusal.allocation_id}: {refusal.reason}", highlight=False)
    if result.refused and not result.accepted:
        raise typer.Exit(15)  # nothing accepted: a broken rule, as RuleViolationError exits
