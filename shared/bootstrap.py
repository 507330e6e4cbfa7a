"""The composition root: every client and use-case service, built from one `Settings`.

`services()` is what handlers (through their endpoints) and the edge ask for: a `Services` for
the settings of the moment. When `get_settings()` returns another object (a rotated secret, or
tests that reset the settings) a new `Services` is made, so a new Stripe key, webhook secret,
Supabase key or QStash key reaches every client within the secret's refresh interval. Each
attribute is built on first use, once even with concurrent first calls, from the settings and
from the other attributes: the wiring of the whole backend is this file.

Tests inject through `override(name=instance)` (kept across rebuilds until `reset()`); anything
built from an overridden part is built again from it. `reset()` forgets overrides and built
instances at once.

The builders import their modules when first called, not here: a handler imports only the
use case and clients its endpoint uses; imported here, every handler's cold start would import
every module of `shared/` (`python -m benchmarks.handler_imports` measures the handlers).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

if TYPE_CHECKING:
    from upstash_redis import Redis

    from shared.account import AccountService
    from shared.account_cleanup import AccountCleanup
    from shared.consumer import JobConsumer
    from shared.db import Database
    from shared.identity import IdentityVerifier
    from shared.invites import InviteService
    from shared.payment_methods import PaymentMethodsService
    from shared.payments import PurchaseService
    from shared.pipeline.provider import ReadingProvider
    from shared.qstash_client import ConsumerWaker, SignatureVerifier
    from shared.queue import ReadingQueue
    from shared.ratelimit import RateLimiter
    from shared.readings import ReadingService
    from shared.reconciliation import Reconciler
    from shared.sessions import SessionService
    from shared.settings import Settings
    from shared.stripe_client import StripeClient
    from shared.stripe_webhooks import WebhookProcessor

T = TypeVar("T")


class built(Generic[T]):
    """A `Services` attribute built by the decorated method on first use, once per `Services`
    even when threads ask at the same moment; an override of the same name wins."""

    def __init__(self, build: Callable[[Services], T]) -> None:
        self._build = build
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> built[T]: ...
    @overload
    def __get__(self, instance: Services, owner: type) -> T: ...

    def __get__(self, instance: Services | None, owner: type) -> built[T] | T:
        if instance is None:
            return self
        done = instance._built
        if self.name not in done:
            # Re-entrant: a service's builder asks for the clients it is built from.
            with instance._lock:
                if self.name not in done:
                    done[self.name] = self._build(instance)
        value: T = done[self.name]
        return value


class Services:
    """Every client and service of one settings object, each built on first use."""

    def __init__(self, settings: Settings, overrides: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self._built: dict[str, Any] = dict(overrides or {})
        self._lock = threading.RLock()

    # Clients.

    @built
    def database(self) -> Database:
        from shared.db import build_database

        return build_database(self.settings)

    @built
    def redis(self) -> Redis:
        from shared.redis import build_redis_from_settings

        return build_redis_from_settings(self.settings)

    @built
    def queue(self) -> ReadingQueue:
        from shared.queue import ReadingQueue

        return ReadingQueue(self.redis)

    @built
    def rate_limiter(self) -> RateLimiter | None:
        """None where no Upstash Redis is configured (nothing to count in)."""
        if not self.settings.upstash_redis_rest_url:
            return None
        from shared.ratelimit import RateLimiter

        return RateLimiter(self.redis, max_requests=self.settings.rate_limit_requests,
                           window_seconds=self.settings.rate_limit_window_seconds)

    @built
    def stripe(self) -> StripeClient:
        from shared.stripe_client import build_stripe_client

        return build_stripe_client(self.settings)

    @built
    def waker(self) -> ConsumerWaker | None:
        """None when QSTASH_TOKEN or JOB_CONSUMER_URL is not set."""
        from shared.qstash_client import build_waker

        return build_waker(self.settings)

    @built
    def qstash_verifier(self) -> SignatureVerifier:
        from shared.qstash_client import build_verifier

        return build_verifier(self.settings)

    @built
    def identity_verifier(self) -> IdentityVerifier:
        """Its JWKS caches live as long as the settings do."""
        from shared.identity.config import build_identity_verifier

        return build_identity_verifier(self.settings)

    @built
    def provider(self) -> ReadingProvider:
        from shared.pipeline.run import build_provider

        return build_provider(self.settings)

    # Use cases.

    @built
    def sessions(self) -> SessionService:
        from shared.sessions import SessionService

        settings = self.settings
        return SessionService(
            verifier=self.identity_verifier, database=self.database,
            rate_limiter=self.rate_limiter, jwt_secret=settings.supabase_jwt_secret,
            ttl_seconds=settings.access_token_ttl_seconds,
            issuer=settings.supabase_url.rstrip("/") + "/auth/v1")

    @built
    def account_cleanup(self) -> AccountCleanup:
        """Stripe and Redis only where they are configured."""
        from shared.account_cleanup import AccountCleanup

        settings = self.settings
        return AccountCleanup(
            database=self.database,
            stripe=self.stripe if settings.stripe_secret_key is not None else None,
            redis=self.redis if settings.upstash_redis_rest_url else None)

    @built
    def account(self) -> AccountService:
        from shared.account import AccountService

        return AccountService(database=self.database, cleanup=self.account_cleanup)

    @built
    def invites(self) -> InviteService:
        from shared.invites import InviteService

        return InviteService(database=self.database)

    @built
    def purchases(self) -> PurchaseService:
        from shared.payments import PurchaseService

        return PurchaseService(database=self.database, stripe=self.stripe)

    @built
    def payment_methods(self) -> PaymentMethodsService:
        from shared.payment_methods import PaymentMethodsService

        return PaymentMethodsService(database=self.database, stripe=self.stripe)

    @built
    def webhooks(self) -> WebhookProcessor:
        from shared.stripe_webhooks import WebhookProcessor, webhook_secrets

        settings = self.settings
        settings.require("stripe_webhook_secret")
        assert settings.stripe_webhook_secret is not None
        return WebhookProcessor(database=self.database, secrets=webhook_secrets(
            settings.stripe_webhook_secret.get_secret_value()))

    @built
    def readings(self) -> ReadingService:
        from shared.readings import ReadingService

        # Without Upstash, jobs wait for the consumer's sweep instead of the stream.
        queue = self.queue if self.settings.upstash_redis_rest_url else None
        return ReadingService(database=self.database, queue=queue, waker=self.waker,
                              max_pending=self.settings.max_pending_readings)

    @built
    def job_consumer(self) -> JobConsumer:
        from shared.consumer import JobConsumer
        from shared.consumer_config import consumer_config

        settings = self.settings
        settings.require("upstash_redis_rest_url", "upstash_redis_rest_token")
        # The provider is built when the first job needs it.
        return JobConsumer(database=self.database, queue=self.queue,
                           provider=lambda: self.provider, config=consumer_config(settings),
                           account_cleanup=lambda: self.account_cleanup)

    @built
    def reconciler(self) -> Reconciler:
        from shared.reconciliation import PostgrestStore, Reconciler

        return Reconciler(stripe_client=self.stripe, store=PostgrestStore(self.database))


NAMES = frozenset(name for name, value in vars(Services).items() if isinstance(value, built))

_overrides: dict[str, Any] = {}
_current: Services | None = None
_lock = threading.Lock()


def services() -> Services:
    """The services of the current settings (a new set after the settings changed)."""
    from shared.settings import get_settings

    settings = get_settings()
    current = _current
    if current is None or current.settings is not settings:
        current = _rebuild(settings)
    return current


def _rebuild(settings: Settings) -> Services:
    global _current
    with _lock:
        if _current is None or _current.settings is not settings:
            _current = Services(settings, _overrides)
        return _current


def override(**instances: Any) -> None:
    """Use these instances (tests) until `reset()`; everything else is built again, so a
    service built from an overridden client gets the override."""
    global _current
    unknown = set(instances) - NAMES
    if unknown:
        raise TypeError(f"bootstrap has no {', '.join(sorted(unknown))}")
    with _lock:
        _overrides.update(instances)
        _current = None


def reset() -> None:
    """Forget every override and every built client and service: the next use builds each
    again from the settings of that moment."""
    global _current
    with _lock:
        _overrides.clear()
        _current = None
