"""How a bank's GoCardless feed renders lines, institutions and agreements."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from connectors.sandbox.gocardless.model import (
    JSON,
    Agreement,
    Line,
    ReferenceStyle,
    SandboxAccount,
    SandboxInstitution,
)
from connectors.sandbox.gocardless.values import stamp

_SINGLE_FIELD = {
    ReferenceStyle.UNSTRUCTURED: "remittanceInformationUnstructured",
    ReferenceStyle.STRUCTURED: "remittanceInformationStructured",
    ReferenceStyle.ADDITIONAL_INFORMATION: "additionalInformation",
    ReferenceStyle.ENTRY_REFERENCE: "entryReference",
    ReferenceStyle.END_TO_END_ID: "endToEndId",
}
"""Styles that put the reference, as it is, in one field."""


def line_json(account: SandboxAccount, line: Line, *, booked: bool) -> JSON:
    """One line as the bank's GoCardless feed renders it."""
    record: JSON = {}
    if account.transaction_ids:
        shown = line.transaction_id if booked else line.pending_id
        if shown:
            record["transactionId"] = shown
    if booked:
        record["bookingDate"] = line.booked_on.isoformat()
    record["valueDate"] = line.value_on.isoformat()
    record["transactionAmount"] = {"amount": line.amount, "currency": line.currency}
    credit = not line.amount.startswith("-")
    if line.counterparty:
        record["debtorName" if credit else "creditorName"] = line.counterparty
    record["bankTransactionCode"] = "PMNT-RCDT-ESCT" if credit else "PMNT-ICDT-ESCT"
    record.update(_reference_fields(account, line))
    state = "booked" if booked else "pending"
    record["internalTransactionId"] = hashlib.md5(  # noqa: S324 - an id, not security
        f"{line.transaction_id}/{state}".encode()
    ).hexdigest()
    return record


def _reference_fields(account: SandboxAccount, line: Line) -> JSON:
    ref = line.reference
    style = account.reference_style
    if style is ReferenceStyle.ABN_AMRO:
        return _abn_amro(account, line)
    if not ref:
        return {}
    if style in _SINGLE_FIELD:
        return {_SINGLE_FIELD[style]: ref}
    if style is ReferenceStyle.UNSTRUCTURED_ARRAY:
        head, _, tail = ref.partition(" ")
        return {"remittanceInformationUnstructuredArray": [head, tail] if tail else [head]}
    if style is ReferenceStyle.STRUCTURED_OBJECT:
        return {
            "remittanceInformationStructured": {
                "reference": ref,
                "referenceType": "SCOR",
                "referenceIssuer": None,
            }
        }
    if style is ReferenceStyle.STRUCTURED_ARRAY:
        return {"remittanceInformationStructuredArray": [ref]}
    if style is ReferenceStyle.FINNISH:
        return {
            "remittanceInformationUnstructured": (
                f"OSTOPVM  {line.value_on:%y%m%d}\n{ref}     \nVARMENTAJA 400"
            )
        }
    return {  # SPARKASSE
        "remittanceInformationUnstructured": ref,
        "additionalInformation": "GUTSCHR. UEBERWEISUNG",
    }


def _abn_amro(account: SandboxAccount, line: Line) -> JSON:
    entries = ["SEPA Overboeking", f"IBAN: {account.iban}", "BIC: ABNANL2A"]
    if line.counterparty:
        entries.append(f"Naam: {line.counterparty}")
    if line.reference:
        entries.append(f"Omschrijving: {line.reference}")
    return {"remittanceInformationUnstructuredArray": entries}


def institution_json(institution: SandboxInstitution) -> JSON:
    """An institution as `GET institutions/` lists it."""
    return {
        "id": institution.id,
        "name": institution.name,
        "bic": institution.bic,
        "transaction_total_days": str(institution.transaction_total_days),
        "countries": list(institution.countries),
        "logo": f"https://cdn-logos.gocardless.com/ais/{institution.id}.png",
        "max_access_valid_for_days": str(institution.max_access_valid_for_days),
    }


def agreement_json(agreement: Agreement) -> JSON:
    """An end-user agreement as `POST agreements/enduser/` answers it."""
    return {
        "id": agreement.id,
        "created": stamp(agreement.created),
        "institution_id": agreement.institution_id,
        "max_historical_days": agreement.max_historical_days,
        "access_valid_for_days": agreement.access_valid_for_days,
        "access_scope": list(agreement.access_scope),
        "accepted": stamp(agreement.accepted) if agreement.accepted else None,
    }


def default_institutions(accounts: Iterable[SandboxAccount]) -> list[SandboxInstitution]:
    """Sandbox Finance plus one institution per seeded account's `institution_id`."""
    found: dict[str, SandboxInstitution] = {
        "SANDBOXFINANCE_SFIN0000": SandboxInstitution(
            "SANDBOXFINANCE_SFIN0000", "Sandbox Finance", "SFIN0000", ("GB",)
        )
    }
    for account in accounts:
        name, _, bic = account.institution_id.partition("_")
        known = found.get(account.institution_id)
        countries = {account.iban[:2].upper(), *(known.countries if known else ())}
        found[account.institution_id] = SandboxInstitution(
            account.institution_id,
            name.replace("-", " ").title(),
            bic or name,
            tuple(sorted(countries)),
        )
    return list(found.values())
