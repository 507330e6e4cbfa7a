"""QStash: waking the job consumer (publish) and proving a request came from QStash (receive).

Both sides use the `qstash` package. Publishing is best effort on the create-reading path: a
short timeout and one retry, and any failure is the caller's to log (the consumer's schedule
catches up). The receiver checks the `Upstash-Signature` JWT with the current and then the next
signing key (so a key rotation never rejects a genuine request), the destination URL claim and
the hash of the raw body. The package (and httpx under it) is imported on first use only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from shared.errors import InvalidQStashSignature

if TYPE_CHECKING:
    from qstash import QStash

    from shared.settings import Settings

CONNECT_TIMEOUT_SECONDS = 2.0
REQUEST_TIMEOUT_SECONDS = 5.0
# QStash's own default wakes a message up to 3 times; a wake-up is cheap to repeat.
WAKE_RETRIES = 3


def build_qstash(token: SecretStr, base_url: str) -> QStash:
    """A client with short timeouts and a single quick retry (the package defaults wait ~10 min)."""
    import httpx
    from qstash import QStash

    client = QStash(
        token.get_secret_value(),
        base_url=base_url.rstrip("/"),
        retry={"retries": 1, "backoff": lambda attempt: 100.0},
    )
    # The package builds its httpx client with a 600 s timeout and offers no option for it.
    http = getattr(getattr(client, "http", None), "_client", None)
    if isinstance(http, httpx.Client):
        http.timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
    return client


class ConsumerWaker:
    """Publishes a message that makes QStash call the job consumer now."""

    def __init__(self, client: QStash, consumer_url: str) -> None:
        self.client = client
        self.consumer_url = consumer_url

    def wake(self, deduplication_id: str) -> str:
        """Publish an empty JSON body; QStash drops a repeat of the same deduplication id."""
        response: Any = self.client.message.publish_json(
            url=self.consumer_url,
            body={},
            retries=WAKE_RETRIES,
            deduplication_id=deduplication_id,
        )
        return str(getattr(response, "message_id", ""))

    def close(self) -> None:
        http = getattr(getattr(self.client, "http", None), "_client", None)
        if http is not None:
            http.close()


class SignatureVerifier:
    def __init__(
        self, current_key: SecretStr, next_key: SecretStr, *, clock_tolerance_seconds: int = 5
    ) -> None:
        self._current_key = current_key
        self._next_key = next_key
        self._clock_tolerance = clock_tolerance_seconds

    def verify(self, signature: str | None, body: bytes, url: str) -> None:
        """Raise 401 `invalid_signature` unless QStash signed exactly this body for `url`."""
        from qstash import Receiver
        from qstash.errors import SignatureError

        if not signature:
            raise InvalidQStashSignature("The Upstash-Signature header is missing.")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidQStashSignature() from None
        receiver = Receiver(
            self._current_key.get_secret_value(), self._next_key.get_secret_value()
        )
        try:
            receiver.verify(signature=signature, body=text, url=url,
                            clock_tolerance=self._clock_tolerance)
        except SignatureError:
            raise InvalidQStashSignature() from None
        except Exception:
            # A malformed token can fail inside the JWT library with other errors.
            raise InvalidQStashSignature() from None


def build_waker(settings: Settings) -> ConsumerWaker | None:
    """None when QSTASH_TOKEN or JOB_CONSUMER_URL is not set."""
    if settings.qstash_token is None or not settings.job_consumer_url:
        return None
    return ConsumerWaker(build_qstash(settings.qstash_token, settings.qstash_url),
                         settings.job_consumer_url)


def build_verifier(settings: Settings) -> SignatureVerifier:
    """Both signing keys are required."""
    settings.require("qstash_current_signing_key", "qstash_next_signing_key")
    assert settings.qstash_current_signing_key is not None
    assert settings.qstash_next_signing_key is not None
    return SignatureVerifier(settings.qstash_current_signing_key,
                             settings.qstash_next_signing_key)
