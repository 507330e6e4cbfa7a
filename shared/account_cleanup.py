"""What an account erasure leaves to do after its SQL transaction committed: detach the saved
cards and delete the Stripe Customer, and drop the user's Redis keys.

Every step is idempotent (a card already detached, a Customer already deleted and a key already
gone count as done), so the same cleanup can run any number of times. `DELETE /account` tries
it once right after the commit; whatever failed (Stripe or Redis down) stays due in
`private.account_erasures`, and the job consumer's sweep calls `sweep_account_cleanups`, which
retries it with a growing delay until it succeeds.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stripe import StripeClient
    from upstash_redis import Redis

    from shared.db import Database

logger = logging.getLogger("mimivibe.account")

DUE_FUNCTION = "account_cleanups_due"
FINISH_FUNCTION = "finish_account_cleanup"
SWEEP_LIMIT = 20
# Stripe's answers that mean the object is already where the cleanup wants it.
_ALREADY_DONE = {"resource_missing", "payment_method_unexpected_state"}


class AccountCleanup:
    def __init__(self, *, database: Database, stripe: StripeClient | None,
                 redis: Redis | None) -> None:
        self._database = database
        self._stripe = stripe
        self._redis = redis

    def _rpc(self, function: str, params: dict[str, Any]) -> Any:
        from shared.db import execute

        return execute(self._database.service.rpc(function, params)).data

    def customer_of(self, user_id: uuid.UUID | str) -> str | None:
        from shared.db import execute

        rows = execute(self._database.service.table("stripe_customers")
                       .select("stripe_customer_id").eq("user_id", str(user_id))).data or []
        return str(rows[0]["stripe_customer_id"]) if rows else None

    def run(self, user_id: uuid.UUID | str, stripe_customer_id: str | None) -> bool:
        """Clean one erased account and record the outcome; True when it is done."""
        try:
            if stripe_customer_id:
                self._delete_customer(stripe_customer_id)
            self._drop_redis_keys(str(user_id))
        except Exception as exc:
            # Recorded for the sweep's retry; the reason is the error's type, never its text
            # (which could carry what Stripe echoed back).
            logger.warning("account cleanup failed for %s: %s", user_id, type(exc).__name__)
            self._rpc(FINISH_FUNCTION, {"p_user_id": str(user_id),
                                        "p_stripe_customer_id": stripe_customer_id,
                                        "p_error": type(exc).__name__})
            return False
        result = self._rpc(FINISH_FUNCTION, {"p_user_id": str(user_id),
                                             "p_stripe_customer_id": stripe_customer_id,
                                             "p_error": None})
        return bool(result and result.get("done"))

    def run_due(self, due: list[dict[str, Any]]) -> int:
        """The cleanups `account_cleanups_due` handed out; how many finished."""
        return sum(self.run(item["user_id"], item.get("stripe_customer_id")) for item in due)

    def _delete_customer(self, customer_id: str) -> None:
        import stripe

        from shared.stripe_client import error_body

        if self._stripe is None:
            raise RuntimeError("Stripe is not configured")
        client = self._stripe
        try:
            methods = client.v1.customers.payment_methods.list(customer_id, {"limit": 100})
            for method in methods.auto_paging_iter():
                try:
                    client.v1.payment_methods.detach(method.id)
                except stripe.InvalidRequestError as exc:
                    if error_body(exc).get("code") not in _ALREADY_DONE:
                        raise
            client.v1.customers.delete(customer_id)
        except stripe.InvalidRequestError as exc:
            # The Customer is already deleted (a previous run got this far).
            if error_body(exc).get("code") != "resource_missing":
                raise

    def _drop_redis_keys(self, user_id: str) -> None:
        """The user's rate-limit windows (`<prefix>:<scope>:<user id>:<window>`)."""
        from shared.ratelimit import KEY_PREFIX

        if self._redis is None:
            return
        cursor = 0
        while True:
            cursor, keys = self._redis.scan(cursor, match=f"{KEY_PREFIX}:*:{user_id}:*",
                                            count=500)
            if keys:
                self._redis.delete(*keys)
            if int(cursor) == 0:
                return


def sweep_account_cleanups(database: Database, cleanup: Callable[[], AccountCleanup]) -> int:
    """The consumer's hook: retry the cleanups that are due. Never raises: a Stripe or
    database outage only means the next run tries again."""
    from shared.db import execute

    try:
        params: dict[str, Any] = {"p_limit": SWEEP_LIMIT}
        due = execute(database.service.rpc(DUE_FUNCTION, params)).data or []
        # Stripe and Redis clients are built only when there is something to clean.
        return cleanup().run_due(due) if due else 0
    except Exception as exc:
        logger.warning("account cleanup sweep skipped: %s", type(exc).__name__)
        return 0
