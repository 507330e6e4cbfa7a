"""The whole local stack (devstack.stack.LocalStack, with its own PostgreSQL and Redis) with
the faults the suite injects into it, and the checks that every fault must pass once over.

The QStash stand-in is left out: the suite runs the job consumer itself (a signed call, as
QStash makes it), so that a consumer run happens when a test says and not on a schedule that
would race the fault.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import psycopg
from psycopg.rows import dict_row

from devstack.qstash_standin.signing import sign_delivery
from devstack.stack import LocalStack
from devstack.stack_services import SERVICES
from devstack.stripe_standin import StandinControl

T = TypeVar("T")
# What a request that does not need the failed part may cost while the fault lasts: the Redis
# path's own bound is about a second; the rest is this shared 2-core machine's noise.
BOUNDED_SECONDS = 3.0
# Every question the suite asks carries these words; no log line at INFO or above may.
QUESTION_WORDS = ("lighthouse-keeper", "ประภาคาร")
QUESTION = "งานใหม่ที่ประภาคารจะได้ไหม my lighthouse-keeper job"
# Leases short enough for a killed consumer's job to come back within the suite's time.
LEASE_SECONDS = 6


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 30.0,
              interval: float = 0.2) -> T:
    """Poll `check` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class User:
    id: str
    token: str


@dataclass
class Timed:
    response: httpx.Response
    seconds: float

    @property
    def status(self) -> int:
        return self.response.status_code

    def error_code(self) -> str | None:
        try:
            return self.response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None


@dataclass
class FaultStack:
    stack: LocalStack
    http: httpx.Client
    signing_key: str
    users: list[User] = field(default_factory=list)

    # -- addresses and the database ----------------------------------------------------------
    def url(self, function: str) -> str:
        return f"{self.stack.info['urls']['functions']}/{function}"

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with psycopg.connect(self.stack.database_url, autocommit=True, row_factory=dict_row,
                             connect_timeout=5) as conn:
            return conn.execute(query, params).fetchall()

    @property
    def stripe(self) -> StandinControl:
        info = self.stack.info["stripe"]
        return StandinControl(info["url"], info["api_key"])

    # -- what users do ------------------------------------------------------------------------
    def call(self, function: str, *, token: str | None = None, json: Any = None,
             idempotency_key: str | None = None, headers: dict[str, str] | None = None,
             content: bytes | None = None, method: str = "POST") -> Timed:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        if idempotency_key:
            sent["Idempotency-Key"] = idempotency_key
        started = time.monotonic()
        response = self.http.request(method, self.url(function), json=json, content=content,
                                     headers=sent)
        return Timed(response, time.monotonic() - started)

    def identity_token(self) -> str:
        identity = self.stack.info["identity"]
        now = int(time.time())
        subject = f"fault-{uuid.uuid4().hex[:10]}"
        return jwt.encode({"iss": identity["issuer"], "aud": identity["audience"], "sub": subject,
                           "iat": now, "exp": now + 600, "email": f"{subject}@example.com",
                           "email_verified": True, "name": "Fault Tester"},
                          identity["hs256_secret"], algorithm="HS256")

    def session(self) -> Timed:
        return self.call("session", token=self.identity_token(), json={})

    def sign_in(self) -> User:
        signed = self.session()
        assert signed.status == 200, signed.response.text
        body = signed.response.json()
        user = User(body["user"]["id"], body["access_token"])
        self.users.append(user)
        return user

    def purchase(self, user: User, key: str | None = None) -> Timed:
        return self.call("purchase", token=user.token, idempotency_key=key or uuid.uuid4().hex,
                         json={"package": "starter", "payment_method_id": "pm_card_visa"})

    def ask(self, user: User, key: str | None = None,
            question: str = QUESTION) -> Timed:
        return self.call("create-reading", token=user.token,
                         idempotency_key=key or uuid.uuid4().hex,
                         json={"question": question, "card_count": 3, "locale": "th"})

    def redeem(self, user: User, code: str) -> Timed:
        return self.call("redeem-invite", token=user.token, json={"invite_code": code})

    def run_consumer(self) -> Timed:
        """One job-consumer invocation, signed as QStash signs it. Without JOB_CONSUMER_URL the
        function checks the URL it was called at, as a function URL sees it: its host and
        `/` (the local server strips the function's name from the path)."""
        url = self.stack.info["urls"]["functions"] + "/"
        return self.call("job-consumer", content=b"{}", headers={
            "content-type": "application/json",
            "Upstash-Signature": sign_delivery(self.signing_key, url=url, body=b"{}")})

    def stars(self, user: User) -> int:
        return int(self.sql("select star_balance from public.users where id = %s",
                            (user.id,))[0]["star_balance"])

    def funded_user(self, stars: int = 5) -> User:
        """A signed-in user whose starter package was paid and credited by the webhook."""
        user = self.sign_in()
        bought = self.purchase(user)
        assert bought.status == 201, bought.response.text
        wait_for("the purchase's stars", lambda: self.stars(user) >= stars)
        return user

    # -- faults -------------------------------------------------------------------------------
    def redis_signal(self, sig: signal.Signals) -> None:
        pid = self.stack.redis.pid
        assert pid is not None
        os.kill(pid, sig)

    @contextmanager
    def redis_stopped(self) -> Iterator[None]:
        """SIGSTOP: Redis holds every connection and answers nothing until SIGCONT."""
        self.redis_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.redis_signal(signal.SIGCONT)

    @contextmanager
    def redis_killed(self) -> Iterator[None]:
        """SIGKILL, then a new Redis on the same port: empty, no stream and no group."""
        self.redis_signal(signal.SIGKILL)
        wait_for("Redis to die", lambda: not self.stack.redis.running)
        try:
            yield
        finally:
            self.stack.redis.stop()
            self.stack.redis.start()

    def stream_job_ids(self) -> list[str]:
        """The job ids of the doorbells waiting in the reading stream."""
        import redis

        from shared.queue import JOB_FIELD, STREAM

        with redis.Redis.from_url(self.stack.redis.url, decode_responses=True) as client:
            return [fields.get(JOB_FIELD, "") for _, fields in client.xrange(STREAM)]

    def flush_redis(self) -> None:
        import redis

        with redis.Redis.from_url(self.stack.redis.url) as client:
            client.flushall()

    @contextmanager
    def postgres_stopped(self) -> Iterator[None]:
        self.stack.postgres.stop()
        try:
            yield
        finally:
            self.stack.postgres.start()
            wait_for("the REST gateway to reach PostgreSQL again",
                     lambda: self.session().status == 200, timeout=30, interval=0.5)

    # -- after recovery -----------------------------------------------------------------------
    def open_jobs(self) -> list[dict[str, Any]]:
        return self.sql("select id, status, attempts from public.jobs "
                        "where status not in ('succeeded', 'dlq')")

    def converge(self, timeout: float = 60.0) -> None:
        """Run the consumer until no job is open and Stripe has nothing left to deliver."""
        def settled() -> bool:
            if self.open_jobs():
                self.run_consumer()
                return False
            return self.stripe.status()["outstanding"] == 0

        wait_for("every job to finish and every webhook to be delivered", settled,
                 timeout=timeout, interval=0.5)

    def assert_consistent(self) -> None:
        """Every paid reading completed or refunded exactly once, no job left open, every
        payment applied once, and the ledger agrees with the balances."""
        assert self.open_jobs() == []
        assert self.sql("select * from public.wallet_audit()") == []
        doubled = self.sql(
            "select related_job_id, transaction_type::text as type, count(*) as n "
            "from public.wallet_transactions where related_job_id is not null "
            "group by 1, 2 having count(*) > 1")
        assert doubled == []
        unsettled = self.sql(
            "select j.id from public.jobs j where j.cost_stars > 0 and not ("
            " (j.status = 'succeeded' and (exists (select 1 from public.tarot_readings r"
            "   where r.job_id = j.id) or j.result ? 'refusal'))"
            " or (j.status = 'dlq' and exists (select 1 from public.wallet_transactions t"
            "   where t.related_job_id = j.id and t.transaction_type = 'refund')))")
        assert unsettled == []
        readings = self.sql("select job_id, count(*) as n from public.tarot_readings "
                            "group by 1 having count(*) > 1")
        assert readings == []


def start(root: Path) -> tuple[LocalStack, str]:
    signing_key = "sig_" + secrets.token_urlsafe(24)
    environment = {
        "QSTASH_CURRENT_SIGNING_KEY": signing_key,
        "QSTASH_NEXT_SIGNING_KEY": "sig_" + secrets.token_urlsafe(24),
        "VISIBILITY_TIMEOUT_SECONDS": str(LEASE_SECONDS),
        "RATE_LIMIT_REQUESTS": "1000",
    }
    services = [s for s in SERVICES if s.name != "qstash"]
    stack = LocalStack(root=root, preferred_ports=False, services=services,
                       environment=environment)
    stack.start()
    return stack, signing_key
