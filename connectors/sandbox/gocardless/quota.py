"""The per-account daily quota and the rate-limit headers of account answers (§1.6)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

from connectors.sandbox.gocardless.model import (
    COMPANY_LIMIT_PER_MINUTE,
    SCOPE_SUMMARY,
    BadAPIError,
)
from connectors.sandbox.gocardless.world import BankWorld


class Quota(BankWorld):
    """`daily_limit` successful calls per account, scope and UTC day; a company-wide minute."""

    def quota_used(
        self, account_id: str, scope: str = "transactions", day: date | None = None
    ) -> int:
        """Successful calls counted against the account's daily limit for `scope` on `day`."""
        with self._lock:
            return self._quota.get((account_id, scope, day or self._now().date()), 0)

    def _quota_left(self, account_id: str, scope: str, now: datetime) -> int:
        """Calls `scope` may still make today (at least one); 429 when none is left."""
        used = self._quota.get((account_id, scope, now.date()), 0)
        if used >= self.daily_limit:
            raise BadAPIError(
                429,
                {
                    "summary": f"Couldn't update {SCOPE_SUMMARY[scope]}",
                    "detail": "Daily request limit set by the Institution has been exceeded.",
                    "type": "RateLimitError",
                    "status_code": 429,
                },
                self._limit_headers(now, 0),
            )
        return self.daily_limit - used

    def _count_success(self, account_id: str, scope: str, now: datetime) -> dict[str, str]:
        """Count one successful call against the quota; the headers its answer carries."""
        key = (account_id, scope, now.date())
        used = self._quota.get(key, 0)
        self._quota[key] = used + 1
        return self._limit_headers(now, self.daily_limit - used - 1)

    def _limit_headers(self, now: datetime, remaining: int) -> dict[str, str]:
        minute = int(now.timestamp()) // 60
        self._company[minute] = self._company.get(minute, 0) + 1
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        return {
            "HTTP_X_RATELIMIT_LIMIT": str(COMPANY_LIMIT_PER_MINUTE),
            "HTTP_X_RATELIMIT_REMAINING": str(
                max(COMPANY_LIMIT_PER_MINUTE - self._company[minute], 0)
            ),
            "HTTP_X_RATELIMIT_RESET": str(60 - int(now.timestamp()) % 60),
            "HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_LIMIT": str(self.daily_limit),
            "HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_REMAINING": str(max(remaining, 0)),
            "HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_RESET": str(
                math.ceil((midnight - now).total_seconds())
            ),
        }
