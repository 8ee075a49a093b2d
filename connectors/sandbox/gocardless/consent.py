"""Institutions, end-user agreements, requisitions and the consent that links accounts."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from connectors.sandbox.gocardless.model import (
    CONSENT_PATH,
    JSON,
    NOT_FOUND,
    SCOPES,
    SUPPORTED_COUNTRIES,
    Agreement,
    Requisition,
    SandboxInstitution,
    field_error,
    flat,
)
from connectors.sandbox.gocardless.values import int_field, stamp
from connectors.sandbox.gocardless.wire import agreement_json, institution_json
from connectors.sandbox.gocardless.world import BankWorld


class Consent(BankWorld):
    """`institutions/`, `agreements/enduser/`, `requisitions/` and the consent page's choice."""

    def institutions(self, country: str | None) -> list[JSON]:
        """`GET institutions/?country=`: a bare array."""
        with self._lock:
            found = list(self._institutions.values())
        if country:
            code = country.upper()
            if code not in SUPPORTED_COUNTRIES:
                raise field_error(
                    400,
                    {
                        "country": {
                            "summary": "Invalid country choice.",
                            "detail": f"{code} is not a valid choice.",
                        }
                    },
                )
            found = [i for i in found if code in i.countries]
        return [institution_json(i) for i in found]

    def institution(self, institution_id: str) -> JSON:
        """`GET institutions/{id}/`."""
        with self._lock:
            found = self._institutions.get(institution_id)
        if found is None:
            raise flat(404, *NOT_FOUND)
        return {
            **institution_json(found),
            "supported_payments": {},
            "supported_features": [
                "account_selection",
                "business_accounts",
                "pending_transactions",
            ],
            "identification_codes": [],
        }

    def create_agreement(self, body: Mapping[str, Any]) -> JSON:
        """`POST agreements/enduser/`."""
        with self._lock:
            agreement = self._new_agreement(body)
            return agreement_json(agreement)

    def _new_agreement(self, body: Mapping[str, Any]) -> Agreement:
        institution = self._agreement_institution(body)
        errors: JSON = {}
        historical = int_field(body, "max_historical_days", 90, errors)
        valid_for = int_field(body, "access_valid_for_days", 90, errors)
        _check_terms(institution, historical, valid_for, errors)
        scope = body.get("access_scope", list(SCOPES))
        if not isinstance(scope, list) or not scope or any(s not in SCOPES for s in scope):
            errors["access_scope"] = {
                "summary": "Unknown value in access_scope",
                "detail": f"Choose one or more of {', '.join(SCOPES)}",
            }
        if errors:
            raise field_error(400, errors)
        assert historical is not None and valid_for is not None
        agreement = Agreement(
            id=str(uuid.uuid4()),
            created=self._now(),
            institution_id=institution.id,
            max_historical_days=historical,
            access_valid_for_days=valid_for,
            access_scope=[str(s) for s in scope],
        )
        self._agreements[agreement.id] = agreement
        return agreement

    def _agreement_institution(self, body: Mapping[str, Any]) -> SandboxInstitution:
        institution_id = body.get("institution_id")
        if not institution_id:
            raise field_error(400, {"institution_id": ["This field is required."]})
        institution = self._institutions.get(str(institution_id))
        if institution is None:
            raise field_error(
                400,
                {
                    "institution_id": {
                        "summary": f"Unknown Institution ID {institution_id}",
                        "detail": "Get Institution IDs from /institutions/?country={$COUNTRY_CODE}",
                    }
                },
            )
        return institution

    def create_requisition(self, body: Mapping[str, Any], base_url: str) -> JSON:
        """`POST requisitions/`: a new requisition (and a default EUA when none is given)."""
        errors: JSON = {}
        for name in ("redirect", "institution_id"):
            if not body.get(name):
                errors[name] = ["This field is required."]
        if errors:
            raise field_error(400, errors)
        with self._lock:
            institution_id = str(body["institution_id"])
            agreement = self._requisition_agreement(body.get("agreement"), institution_id)
            requisition_id = str(uuid.uuid4())
            requisition = Requisition(
                id=requisition_id,
                created=self._now(),
                redirect=str(body["redirect"]),
                institution_id=institution_id,
                agreement=agreement.id,
                reference=str(body.get("reference") or requisition_id),
                user_language=str(body.get("user_language") or "EN").upper(),
                link=f"{base_url.rstrip('/')}{CONSENT_PATH}/{requisition_id}/{institution_id}",
                account_selection=bool(body.get("account_selection", False)),
                redirect_immediate=bool(body.get("redirect_immediate", False)),
            )
            self._requisitions[requisition_id] = requisition
            return self._requisition_json(requisition)

    def _requisition_agreement(self, agreement_id: Any, institution_id: str) -> Agreement:
        """The EUA a requisition names (checked against its institution), or a new default."""
        if not agreement_id:
            return self._new_agreement({"institution_id": institution_id})
        agreement = self._agreements.get(str(agreement_id))
        if agreement is None:
            raise _agreement_error(
                "Invalid agreement", f"{agreement_id} is not a valid end user agreement"
            )
        if agreement.institution_id != institution_id:
            raise _agreement_error(
                "Incorrect Institution ID",
                f"Provided Institution ID: '{institution_id}' for requisition does not match "
                f"EUA institution ID '{agreement.institution_id}'. Please provide correct "
                "institution ID.",
            )
        return agreement

    def agreement(self, agreement_id: str) -> JSON:
        """`GET agreements/enduser/{id}/`: `accepted` is set once the account holder consented."""
        with self._lock:
            found = self._agreements.get(agreement_id)
            if found is None:
                raise flat(404, *NOT_FOUND)
            return agreement_json(found)

    def requisition(self, requisition_id: str) -> JSON:
        """`GET requisitions/{id}/`."""
        with self._lock:
            found = self._requisitions.get(requisition_id)
            if found is None:
                raise flat(404, *NOT_FOUND)
            return self._requisition_json(found)

    def _requisition_json(self, requisition: Requisition) -> JSON:
        status = requisition.status
        expires = self._agreements[requisition.agreement].expires()
        if status == "LN" and expires is not None and expires <= self._now():
            status = "EX"
        return {
            "id": requisition.id,
            "created": stamp(requisition.created),
            "redirect": requisition.redirect,
            "status": status,
            "institution_id": requisition.institution_id,
            "agreement": requisition.agreement,
            "reference": requisition.reference,
            "accounts": list(requisition.accounts),
            "user_language": requisition.user_language,
            "link": requisition.link,
            "ssn": None,
            "account_selection": requisition.account_selection,
            "redirect_immediate": requisition.redirect_immediate,
        }

    def consent(self, requisition_id: str, institution_id: str) -> tuple[Requisition, list[str]]:
        """The requisition a consent page is about and the accounts it would link."""
        with self._lock:
            requisition = self._requisitions.get(requisition_id)
            if requisition is None or requisition.institution_id != institution_id:
                raise flat(404, *NOT_FOUND)
            accounts = [
                a.account_id
                for a in self._accounts.values()
                if a.institution_id == requisition.institution_id
            ]
            return requisition, accounts

    def give_consent(self, requisition_id: str, institution_id: str, allow: bool) -> str:
        """The user allowed (or refused) access: link accounts; the URL to redirect to."""
        requisition, accounts = self.consent(requisition_id, institution_id)
        with self._lock:
            query = {"ref": requisition.reference}
            if allow:
                self._link(requisition, accounts)
            else:
                requisition.status = "RJ"
                query["error"] = "UserCancelledSession"
                query["details"] = "User cancelled the session."
            separator = "&" if "?" in requisition.redirect else "?"
            return f"{requisition.redirect}{separator}{urlencode(query)}"

    def _link(self, requisition: Requisition, accounts: list[str]) -> None:
        agreement = self._agreements[requisition.agreement]
        agreement.accepted = self._now()
        requisition.accounts = accounts
        requisition.status = "LN"
        for account_id in accounts:
            self._account_agreement[account_id] = agreement.id
            self._revoked.discard(account_id)


def _check_terms(
    institution: SandboxInstitution, historical: int | None, valid_for: int | None, errors: JSON
) -> None:
    """Record the institution's limits on history and access length that the EUA exceeds."""
    if historical is not None and not 0 < historical <= institution.transaction_total_days:
        errors["max_historical_days"] = {
            "summary": "Incorrect max_historical_days",
            "detail": f"max_historical_days must be > 0 and <= "
            f"{institution.transaction_total_days} for {institution.id}",
        }
    if valid_for is not None and not 0 < valid_for <= institution.max_access_valid_for_days:
        errors["access_valid_for_days"] = {
            "summary": "Incorrect access_valid_for_days",
            "detail": f"access_valid_for_days must be > 0 and <= "
            f"{institution.max_access_valid_for_days}",
        }


def _agreement_error(summary: str, detail: str) -> Exception:
    return field_error(400, {"agreement": {"summary": summary, "detail": detail}})
