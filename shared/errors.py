"""The one error hierarchy of the functions, its HTTP status table and its messages.

Every error a function returns is an `AppError`; its class fixes the stable `code` and the HTTP
status (docs/API.md). SQL functions raise domain errors with project SQLSTATEs (class `MV`),
mapped here by code, never by message text.

Every error has an English and a Thai message: the class's `default_message` and
`default_message_th`, and, for the sentences raised with a more specific English message,
`MESSAGES_TH` (English sentence -> Thai, as a gettext catalogue keys on the source text). A
message built at run time (a provider's decline text) falls back to the class's Thai message.
`message_for(language)` picks; the `code` never changes with the language.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "Something went wrong on our side."
    default_message_th: ClassVar[str] = "เกิดข้อผิดพลาดในระบบของเรา"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)

    def message_for(self, language: str) -> str:
        """The message in `language` ("th" or "en"; anything else is English)."""
        if language != "th":
            return self.message
        if self.message == self.default_message:
            return self.default_message_th
        return MESSAGES_TH.get(self.message, self.default_message_th)


# The specific English sentences raised in shared/ and functions/, in Thai (a test reads the code
# and fails when a raised sentence has no entry here).
MESSAGES_TH: dict[str, str] = {
    "The request body is not valid base64.": "เนื้อหาของคำขอไม่ใช่ base64 ที่ถูกต้อง",
    "A JSON body is required.": "ต้องส่งเนื้อหาของคำขอเป็น JSON",
    "This account was deleted.": "บัญชีนี้ถูกลบแล้ว",
    "The request body holds a number that is too long.": "เนื้อหาของคำขอมีตัวเลขที่ยาวเกินไป",
    "The request body must be a JSON object.": "เนื้อหาของคำขอต้องเป็นออบเจ็กต์ JSON",
    "The identity token is not valid.": "โทเค็นยืนยันตัวตนไม่ถูกต้อง",
    "The identity token's issuer is not accepted.": "ไม่รับโทเค็นยืนยันตัวตนจากผู้ออกรายนี้",
    "The identity token has no key id.": "โทเค็นยืนยันตัวตนไม่มีรหัสกุญแจ (kid)",
    "The identity provider's keys are unavailable.":
        "ยังดึงกุญแจของผู้ให้บริการยืนยันตัวตนไม่ได้ โปรดลองอีกครั้ง",
    "The identity token was signed with an unknown key.":
        "โทเค็นยืนยันตัวตนลงนามด้วยกุญแจที่ไม่รู้จัก",
    "An identity provider token is required.": "ต้องใช้โทเค็นจากผู้ให้บริการยืนยันตัวตน",
    "The sign-in returned no user.": "การเข้าสู่ระบบไม่ได้ส่งข้อมูลผู้ใช้กลับมา",
    "The Upstash-Signature header is missing.": "ไม่มีส่วนหัว Upstash-Signature",
    "The payment provider refused the request.": "ผู้ให้บริการชำระเงินปฏิเสธคำขอนี้",
    "Redeeming the invite code returned no invite.": "การใช้รหัสเชิญไม่ได้ส่งข้อมูลคำเชิญกลับมา",
    "You have no saved card with this id.": "คุณไม่มีบัตรที่บันทึกไว้ซึ่งมีรหัสนี้",
    "The Stripe-Signature header is malformed.": "ส่วนหัว Stripe-Signature มีรูปแบบไม่ถูกต้อง",
    "The webhook signature is too old (or from the future).":
        "ลายเซ็นของ webhook เก่าเกินไป (หรือลงเวลาในอนาคต)",
    "The event's object has no id.": "ออบเจ็กต์ของอีเวนต์ไม่มี id",
    "Idempotency-Key must be 1 to 255 printable ASCII characters.":
        "Idempotency-Key ต้องเป็นอักขระ ASCII ที่พิมพ์ได้ 1 ถึง 255 ตัว",
    "An Idempotency-Key header of 1 to 255 printable ASCII characters is required.":
        "ต้องมีส่วนหัว Idempotency-Key เป็นอักขระ ASCII ที่พิมพ์ได้ 1 ถึง 255 ตัว",
    "The Stripe customer was not recorded.": "ระบบไม่ได้บันทึกลูกค้า Stripe",
    "Creating the reading returned no job.": "การสร้างคำทำนายไม่ได้ส่งงานกลับมา",
    "The database is unavailable; try again.": "ฐานข้อมูลไม่พร้อมใช้งาน โปรดลองอีกครั้ง",
    "The consumer needs a positive batch size and job budget.":
        "ตัวประมวลผลงานต้องมีขนาดชุดและจำนวนงานเป็นบวก",
    "AUTH0_AUDIENCE is required when AUTH0_ISSUER is set.":
        "ต้องตั้งค่า AUTH0_AUDIENCE เมื่อตั้งค่า AUTH0_ISSUER",
    "CUSTOM_ISSUER needs CUSTOM_HS256_SECRET or CUSTOM_JWKS_URL.":
        "CUSTOM_ISSUER ต้องมี CUSTOM_HS256_SECRET หรือ CUSTOM_JWKS_URL",
}


class ConfigError(AppError):
    """Missing or invalid configuration: raised at cold start, never caught silently."""

    code = "configuration_error"
    status = 500
    default_message = "The function is not configured correctly."
    default_message_th = "ฟังก์ชันนี้ตั้งค่าไม่ถูกต้อง"


class ValidationFailed(AppError):
    code = "validation_error"
    status = 422
    default_message = "The request is not valid."
    default_message_th = "คำขอไม่ถูกต้อง"


class InvalidJson(ValidationFailed):
    default_message = "The request body is not valid JSON."
    default_message_th = "เนื้อหาของคำขอไม่ใช่ JSON ที่ถูกต้อง"


class PayloadTooLarge(AppError):
    code = "payload_too_large"
    status = 413
    default_message = "The request body is too large."
    default_message_th = "เนื้อหาของคำขอมีขนาดใหญ่เกินไป"


class MethodNotAllowed(AppError):
    code = "method_not_allowed"
    status = 405
    default_message = "This method is not allowed here."
    default_message_th = "ไม่รองรับเมธอดนี้ที่นี่"


class Unauthorized(AppError):
    code = "unauthorized"
    status = 401
    default_message = "A valid access token is required."
    default_message_th = "ต้องใช้โทเค็นการเข้าถึงที่ถูกต้อง"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        super().__init__(message, **kwargs)


class NotFound(AppError):
    code = "not_found"
    status = 404
    default_message = "Not found."
    default_message_th = "ไม่พบข้อมูล"


class IdempotencyKeyReused(AppError):
    code = "idempotency_key_reused"
    status = 409
    default_message = "This Idempotency-Key was used with a different request."
    default_message_th = "Idempotency-Key นี้เคยใช้กับคำขออื่นแล้ว"


class RateLimited(AppError):
    code = "rate_limited"
    status = 429
    default_message = "Too many requests; try again later."
    default_message_th = "มีคำขอมากเกินไป โปรดลองใหม่ภายหลัง"


class EmailConflict(AppError):
    code = "email_conflict"
    status = 409
    default_message = "This email belongs to another account and is not verified."
    default_message_th = "อีเมลนี้เป็นของบัญชีอื่นและยังไม่ได้รับการยืนยัน"


class PaymentFailed(AppError):
    code = "payment_failed"
    status = 402
    default_message = "The payment was declined."
    default_message_th = "การชำระเงินถูกปฏิเสธ"


class PaymentProviderUnavailable(AppError):
    code = "payment_provider_unavailable"
    status = 502
    default_message = "The payment provider is unavailable; try again."
    default_message_th = "ผู้ให้บริการชำระเงินไม่พร้อมใช้งาน โปรดลองอีกครั้ง"


class InvalidWebhookSignature(AppError):
    code = "invalid_signature"
    status = 400
    default_message = "The webhook signature is not valid."
    default_message_th = "ลายเซ็นของ webhook ไม่ถูกต้อง"


class InvalidPayload(AppError):
    code = "invalid_payload"
    status = 400
    default_message = "The webhook payload is not valid."
    default_message_th = "ข้อมูลของ webhook ไม่ถูกต้อง"


class InvalidQStashSignature(AppError):
    code = "invalid_signature"
    status = 401
    default_message = "The QStash signature is not valid."
    default_message_th = "ลายเซ็นของ QStash ไม่ถูกต้อง"


class InviteNotFound(AppError):
    code = "invite_not_found"
    status = 404
    default_message = "No user has this invite code."
    default_message_th = "ไม่มีผู้ใช้ที่มีรหัสเชิญนี้"


class AlreadyInvited(AppError):
    code = "already_invited"
    status = 409
    default_message = "You have already redeemed an invite code."
    default_message_th = "คุณใช้รหัสเชิญไปแล้ว"


class SelfInvite(AppError):
    code = "self_invite"
    status = 422
    default_message = "You cannot redeem your own invite code."
    default_message_th = "คุณใช้รหัสเชิญของตัวเองไม่ได้"


class InviteWindowClosed(AppError):
    code = "invite_window_closed"
    status = 422
    default_message = "Invite codes can be redeemed only within 7 days of signing up."
    default_message_th = "ใช้รหัสเชิญได้ภายใน 7 วันหลังสมัครสมาชิกเท่านั้น"


class InviteCycle(AppError):
    code = "invite_cycle"
    status = 422
    default_message = "This invite code would create an invite cycle."
    default_message_th = "รหัสเชิญนี้จะทำให้การเชิญวนกลับเป็นวงจร"


class InsufficientStars(AppError):
    code = "insufficient_stars"
    status = 402
    default_message = "Not enough stars."
    default_message_th = "ดาวไม่พอ"


class InsufficientCoins(AppError):
    code = "insufficient_coins"
    status = 400
    default_message = "Not enough coins."
    default_message_th = "เหรียญไม่พอ"


class NotAMultipleOfRate(AppError):
    code = "not_a_multiple_of_rate"
    status = 400
    default_message = "Coins must be a whole multiple of the exchange rate."
    default_message_th = "จำนวนเหรียญต้องเป็นจำนวนเท่าของอัตราแลกเปลี่ยน"


class TooManyPendingReadings(AppError):
    code = "too_many_pending_readings"
    status = 429
    default_message = "You have too many readings waiting; try again when one is done."
    default_message_th = "คุณมีคำทำนายที่รออยู่มากเกินไป โปรดลองใหม่เมื่อมีคำทำนายเสร็จแล้ว"


class ServiceUnavailable(AppError):
    code = "service_unavailable"
    status = 503
    default_message = "A service we depend on is unavailable; try again."
    default_message_th = "บริการที่ระบบต้องใช้ไม่พร้อมใช้งาน โปรดลองอีกครั้ง"
    # Seconds a client (or Stripe, or QStash) should wait before trying again.
    retry_after_seconds: ClassVar[int] = 5

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(self.retry_after_seconds)})
        super().__init__(message, **kwargs)


# SQLSTATEs raised by the project's SQL functions (`raise exception using errcode = 'MV001',
# message = 'insufficient_stars'`). PostgREST maps unknown SQLSTATEs to 400 and passes the code
# through, so Python switches on `code`, never on the message.
SQLSTATE_ERRORS: dict[str, type[AppError]] = {
    "MV001": InsufficientStars,
    "MV002": InsufficientCoins,
    "MV003": NotAMultipleOfRate,
    "MV004": IdempotencyKeyReused,
    "MV005": NotFound,
    "MV006": ValidationFailed,
    "MV010": InviteNotFound,
    "MV011": AlreadyInvited,
    "MV012": SelfInvite,
    "MV013": InviteWindowClosed,
    "MV014": InviteCycle,
    "MV020": EmailConflict,
    "MV030": TooManyPendingReadings,
}


def from_sqlstate(code: str | None, message: str | None = None) -> AppError | None:
    """The `AppError` for a project SQLSTATE, or None when the code is not one of ours."""
    cls = SQLSTATE_ERRORS.get(code or "")
    return cls() if cls else None


def error_classes() -> list[type[AppError]]:
    """`AppError` and every subclass, in definition order."""
    found: list[type[AppError]] = []
    pending: list[type[AppError]] = [AppError]
    while pending:
        cls = pending.pop(0)
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return found


def error_catalog() -> dict[str, dict[str, Any]]:
    """Every `code` with its status(es) and its English and Thai messages (docs, OpenAPI)."""
    catalog: dict[str, dict[str, Any]] = {}
    for cls in error_classes():
        entry = catalog.setdefault(cls.code, {"status": [], "en": cls.default_message,
                                              "th": cls.default_message_th})
        if cls.status not in entry["status"]:
            entry["status"].append(cls.status)
    return dict(sorted(catalog.items()))
