"""The `account` use cases: the signed-in user's rights over their data (Thailand's PDPA; the app
stores require in-app deletion).

Export is `public.export_account()` called with the user's own token, so RLS decides what is
theirs. Erasure is `public.erase_account(...)`, one SQL transaction (open readings refunded,
balance forfeited on the ledger, personal data erased, financial records anonymised, the account
marked erased); after it commits, the Stripe Customer and the user's Redis keys are cleaned up
once here and, when that fails, by the job consumer's sweep (shared/account_cleanup.py).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.request_model import RequestModel

if TYPE_CHECKING:
    from shared.access_tokens import AuthenticatedUser
    from shared.account_cleanup import AccountCleanup
    from shared.db import Database

logger = logging.getLogger("mimivibe.account")

CONFIRMATION = "delete my account"
ERASED_MESSAGES = {
    "en": ("Your account was deleted. Your personal data is erased; payments and wallet records "
           "are kept anonymised for accounting. Remaining stars and coins are forfeited."),
    "th": ("บัญชีของคุณถูกลบแล้ว ข้อมูลส่วนบุคคลของคุณถูกลบ ส่วนประวัติการชำระเงินและกระเป๋าเงิน"
           "จะถูกเก็บไว้แบบไม่ระบุตัวตนเพื่อการบัญชี ดาวและเหรียญที่เหลือจะถูกริบ"),
}


class DeleteAccountRequest(RequestModel):
    """The confirmation the app asks the user to give; anything else is 422."""

    confirm: Literal["delete my account"] = Field(
        description='Exactly "delete my account".')


class DeleteAccountResponse(BaseModel):
    model_config = ConfigDict(defer_build=True)

    deleted: bool
    erased_at: datetime
    message: str


class AccountExport(BaseModel):
    """Everything stored about the user; rows as the database holds them."""

    model_config = ConfigDict(defer_build=True, extra="allow")

    exported_at: datetime
    user_id: str
    profile: dict[str, Any] | None
    identities: list[dict[str, Any]]
    stripe_customer: dict[str, Any] | None
    payments: list[dict[str, Any]]
    ledger: list[dict[str, Any]]
    readings: list[dict[str, Any]]
    jobs: list[dict[str, Any]]
    job_attempts: list[dict[str, Any]]
    invites: list[dict[str, Any]]
    saved_cards: list[dict[str, Any]]


class AccountService:
    def __init__(self, *, database: Database, cleanup: AccountCleanup | None) -> None:
        self._database = database
        self._cleanup = cleanup

    def export(self, user: AuthenticatedUser) -> AccountExport:
        from shared.db import execute

        data = execute(self._database.for_user(user.access_token).rpc("export_account", {})).data
        return AccountExport.model_validate(data)

    def erase(self, user: AuthenticatedUser, requested_by: str = "self",
              language: str = "en") -> DeleteAccountResponse:
        """Erase the caller's account; a repeated call answers with the first erasure. The
        answer's message (what is erased, kept and forfeited) is in the caller's language."""
        from shared.db import execute

        params: dict[str, Any] = {"p_user_id": str(user.user_id),
                                  "p_requested_by": requested_by, "p_reason": None}
        result = execute(self._database.service.rpc("erase_account", params)).data
        if not result["already_erased"]:
            self._clean_up(user)
        return DeleteAccountResponse(deleted=True, erased_at=result["erased_at"],
                                     message=ERASED_MESSAGES.get(language, ERASED_MESSAGES["en"]))

    def _clean_up(self, user: AuthenticatedUser) -> None:
        """One try right after the commit; a failure is already recorded for the sweep."""
        if self._cleanup is None:
            return
        try:
            self._cleanup.run(user.user_id, self._cleanup.customer_of(user.user_id))
        except Exception as exc:
            logger.warning("account cleanup deferred to the sweep: %s", type(exc).__name__)
