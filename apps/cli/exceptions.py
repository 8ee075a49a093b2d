"""`recon exceptions`: the finance work queue (list, show, assign, unassign, comment, resolve,
reopen).

Each command parses its arguments, calls one function of `recon.review.queue` or
`recon.review.exceptions` and prints the typed result: a table for people, `--json` for
scripts. The acting user comes from `--as EMAIL` or RECON_USER; the service checks what they
may do.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from apps.cli.context import acting_user, console, runtime
from apps.cli.options import AsOption, JsonOption, TenantOption

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from recon.review.views import CommentView, ExceptionDetail, ExceptionView, QueuePage

app = typer.Typer(
    help="The finance work queue: list, show, assign, comment on, resolve and reopen exceptions.",
    no_args_is_help=True,
)

VersionOption = Annotated[
    int | None,
    typer.Option(
        "--version",
        help="The version you saw (from list/show). Scripts should pass it: without it the "
        "current version is read first, so a change made meanwhile is overwritten silently.",
    ),
]
IdArgument = Annotated[int, typer.Argument(help="The exception's id.", show_default=False)]


def _engine() -> Engine:
    return runtime().checked_engine()


def _emit(value: object) -> None:
    from recon.review.views import to_jsonable

    typer.echo(json.dumps(to_jsonable(value), sort_keys=True))


def _version(tenant: str, acting: str, exception_id: int, given: int | None) -> int:
    if given is not None:
        return given
    from recon.review.exceptions import current_version

    return current_version(_engine(), acting, tenant, exception_id)


@app.command("list")
def list_command(
    tenant: TenantOption,
    status: Annotated[
        str, typer.Option(help="open, resolved, closed, or all.", show_default=True)
    ] = "open",
    kind: Annotated[str | None, typer.Option(help="Only this kind (e.g. ambiguous).")] = None,
    assignee: Annotated[
        str | None, typer.Option(help="Only those held by this email; 'none' for unassigned.")
    ] = None,
    source: Annotated[str | None, typer.Option(help="bank, stripe or gocardless.")] = None,
    currency: Annotated[str | None, typer.Option(help="Only this ISO currency.")] = None,
    min_amount: Annotated[
        str | None, typer.Option("--min", help="At least this amount (decimal, e.g. 12.50).")
    ] = None,
    max_amount: Annotated[str | None, typer.Option("--max", help="At most this amount.")] = None,
    older_than: Annotated[
        int | None, typer.Option("--older-than", help="Only those older than DAYS days.")
    ] = None,
    search: Annotated[
        str | None, typer.Option(help="Text in the payer's name or the payment reference.")
    ] = None,
    sort: Annotated[str, typer.Option(help="age (oldest first), amount or kind.")] = "age",
    limit: Annotated[int, typer.Option(help="Rows per page (at most 500).")] = 50,
    after: Annotated[
        str | None, typer.Option(help="Continue after this cursor (printed as `next`).")
    ] = None,
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """List exceptions, oldest first; filters narrow it, --after pages on."""
    from recon.errors import RuleViolationError
    from recon.review.queue import list_exceptions, parse_amount_bound
    from recon.review.views import QueueCursor, QueueFilter, QueueSort

    try:
        order = QueueSort(sort)
    except ValueError:
        raise RuleViolationError(f"--sort must be age, amount or kind, not {sort!r}") from None
    filters = QueueFilter(
        kind=kind,
        status=None if status == "all" else status,
        assignee=assignee,
        source=source,
        currency=currency,
        min_minor=parse_amount_bound(min_amount, currency) if min_amount else None,
        max_minor=parse_amount_bound(max_amount, currency) if max_amount else None,
        older_than_days=older_than,
        search=search,
    )
    page = list_exceptions(
        _engine(),
        acting_user(as_),
        tenant,
        filters,
        sort=order,
        after=QueueCursor.decode(after) if after else None,
        limit=limit,
    )
    if as_json:
        _emit(list(page.items))
        if page.next is not None:
            typer.echo(f"next: {page.next.encode()}", err=True)
        return
    _print_page(page)


def _print_page(page: QueuePage) -> None:
    table = Table("id", "kind", "status", "amount", "age", "assignee", "payer", "reference", "v")
    for item in page.items:
        table.add_row(
            str(item.id),
            item.kind,
            item.status,
            f"{item.amount or '-'} {item.currency or ''}".strip(),
            f"{item.age_days}d",
            item.assignee or "-",
            item.payer or "-",
            item.reference or "-",
            str(item.version),
        )
    console.print(table)
    if page.next is not None:
        console.print(f"more: --after {page.next.encode()}", highlight=False)


@app.command("show")
def show_command(
    exception_id: IdArgument,
    tenant: TenantOption,
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one exception: its payment and landed record, candidates, open invoices, history."""
    from recon.review.exceptions import exception_detail

    detail = exception_detail(_engine(), acting_user(as_), tenant, exception_id)
    if as_json:
        _emit(detail)
        return
    _print_detail(detail)


def _print_detail(detail: ExceptionDetail) -> None:
    e = detail.exception
    console.print(
        f"[bold]exception {e.id}[/bold] {e.kind} · {e.status} · {e.amount or '-'} "
        f"{e.currency or ''} · {e.age_days} days · version {e.version}",
        highlight=False,
    )
    console.print(f"  {e.detail}", highlight=False)
    console.print(f"  assignee: {e.assignee or '-'}; last change by {e.updated_by or 'engine'}")
    if e.resolution_kind:
        console.print(f"  resolved {e.resolution_kind} by {e.resolved_by}: {e.resolution_note}")
    if detail.payment is not None:
        p = detail.payment
        console.print(
            f"payment {p.transaction_ref}: {p.amount} {p.currency} on {p.booked_on}, "
            f"payer {p.counterparty or '-'}, reference {p.reference or '-'}",
            highlight=False,
        )
        if p.raw_record is not None:
            console.print_json(json.dumps(p.raw_record, default=str))
    _rows("candidates", ("invoice", "amount", "rule", "confidence", "decision"), [
        (c.invoice_id, c.amount, c.rule, c.confidence, c.decision) for c in detail.candidates
    ])  # fmt: skip
    _rows("runners-up", ("invoice", "confidence", "rule"), [
        (r.invoice_id, r.confidence, r.rule) for r in detail.runners_up
    ])  # fmt: skip
    _rows(f"open invoices (by {detail.payer_match})", ("invoice", "client", "balance", "due"), [
        (i.invoice_id, i.client_name or i.client_id, f"{i.balance} {i.currency}", i.due_on)
        for i in detail.open_invoices
    ])  # fmt: skip
    _rows("comments", ("when", "who", "text"), [
        (c.created_at, c.author, c.body) for c in detail.comments
    ])  # fmt: skip
    _rows("history", ("when", "who", "action"), [
        (h.occurred_at, h.actor, h.action) for h in detail.history
    ])  # fmt: skip


def _rows(title: str, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        console.print(f"{title}: none", highlight=False)
        return
    table = Table(*header, title=title, title_justify="left")
    for row in rows:
        table.add_row(*("-" if v is None else str(v) for v in row))
    console.print(table)


def _done(view: ExceptionView, as_json: bool, what: str) -> None:
    if as_json:
        _emit(view)
    else:
        console.print(f"exception {view.id} {what} (version {view.version})", highlight=False)


@app.command("assign")
def assign_command(
    exception_id: IdArgument,
    tenant: TenantOption,
    to: Annotated[str, typer.Option("--to", help="The email of the person who takes it.")],
    version: VersionOption = None,
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give an exception to a person who may work on the tenant."""
    from recon.review.exceptions import assign

    acting = acting_user(as_)
    seen = _version(tenant, acting, exception_id, version)
    view = assign(_engine(), acting, tenant, exception_id, to, seen)
    _done(view, as_json, f"assigned to {view.assignee}")


@app.command("unassign")
def unassign_command(
    exception_id: IdArgument,
    tenant: TenantOption,
    version: VersionOption = None,
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take an exception off whoever holds it."""
    from recon.review.exceptions import unassign

    acting = acting_user(as_)
    seen = _version(tenant, acting, exception_id, version)
    _done(unassign(_engine(), acting, tenant, exception_id, seen), as_json, "unassigned")


@app.command("comment")
def comment_command(
    exception_id: IdArgument,
    tenant: TenantOption,
    text: Annotated[str, typer.Option("--text", help="The comment.")],
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a comment (it changes nothing else, so it needs no version)."""
    from recon.review.exceptions import comment

    added: CommentView = comment(_engine(), acting_user(as_), tenant, exception_id, text)
    if as_json:
        _emit(added)
    else:
        console.print(f"comment {added.id} added to exception {exception_id}", highlight=False)


@app.command("resolve")
def resolve_command(
    exception_id: IdArgument,
    tenant: TenantOption,
    resolution: Annotated[
        str,
        typer.Option(help="matched, not_customer, refunded, duplicate, written_off or other."),
    ],
    note: Annotated[str | None, typer.Option(help="Why, for the next person.")] = None,
    version: VersionOption = None,
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resolve an open exception; a later engine run leaves it resolved."""
    from recon.review.exceptions import resolve

    acting = acting_user(as_)
    seen = _version(tenant, acting, exception_id, version)
    view = resolve(_engine(), acting, tenant, exception_id, resolution, note, seen)
    _done(view, as_json, f"resolved as {view.resolution_kind}")


@app.command("reopen")
def reopen_command(
    exception_id: IdArgument,
    tenant: TenantOption,
    note: Annotated[str | None, typer.Option(help="Why it is open again.")] = None,
    version: VersionOption = None,
    as_: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Open a resolved exception again."""
    from recon.review.exceptions import reopen

    acting = acting_user(as_)
    seen = _version(tenant, acting, exception_id, version)
    _done(reopen(_engine(), acting, tenant, exception_id, seen, note), as_json, "reopened")
