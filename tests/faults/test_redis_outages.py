"""Redis killed, stopped or emptied: sign-in, purchase, webhooks, redeem and create-reading
answer as usual within a bounded time (the limiter lets requests through, a reading waits in
PostgreSQL), and once Redis is back every paid reading completes exactly once."""

from __future__ import annotations

from tests.faults.stack import BOUNDED_SECONDS, FaultStack, Timed, User, wait_for


def served(timed: Timed, status: int) -> None:
    assert timed.status == status, timed.response.text
    assert timed.seconds < BOUNDED_SECONDS, f"took {timed.seconds:.2f} s"


def use_everything(faults: FaultStack, user: User, friend: User) -> list[str]:
    """Every user function that does not need Redis, as a user would call them; the job ids."""
    served(faults.session(), 200)
    before = faults.stars(user)
    served(faults.purchase(user), 201)
    # The webhook needs no Redis: the stars arrive while it is out.
    wait_for("the purchase's stars during the outage", lambda: faults.stars(user) >= before + 5)
    code = faults.sql("select invite_code from public.users where id = %s", (user.id,))
    served(faults.redeem(friend, code[0]["invite_code"]), 200)
    jobs = []
    for _ in range(2):
        asked = faults.ask(user)
        served(asked, 202)
        jobs.append(asked.response.json()["job_id"])
    # The consumer cannot reach the stream: it still answers, having done SQL housekeeping.
    served(faults.run_consumer(), 200)
    return jobs


def completed(faults: FaultStack, jobs: list[str]) -> None:
    faults.converge()
    rows = faults.sql("select status, attempts from public.jobs where id = any(%s::uuid[])",
                      (jobs,))
    assert [r["status"] for r in rows] == ["succeeded"] * len(jobs)


def test_redis_killed_then_replaced_by_an_empty_one(healthy: FaultStack) -> None:
    user, friend = healthy.funded_user(), healthy.sign_in()
    with healthy.redis_killed():
        jobs = use_everything(healthy, user, friend)
    completed(healthy, jobs)


def test_redis_stopped_then_continued(healthy: FaultStack) -> None:
    user, friend = healthy.funded_user(), healthy.sign_in()
    with healthy.redis_stopped():
        jobs = use_everything(healthy, user, friend)
    completed(healthy, jobs)


def test_redis_emptied_while_jobs_wait_in_its_stream(healthy: FaultStack) -> None:
    user = healthy.funded_user()
    waiting = healthy.ask(user)
    served(waiting, 202)
    # The job's doorbell waits in the stream, then Redis loses everything.
    wait_for("the job's doorbell on the stream",
             lambda: waiting.response.json()["job_id"] in healthy.stream_job_ids())
    healthy.flush_redis()
    after = healthy.ask(user)
    served(after, 202)
    completed(healthy, [waiting.response.json()["job_id"], after.response.json()["job_id"]])
