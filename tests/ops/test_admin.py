"""Operator commands: queue health, dead letters, replaying a dead letter, refunding a reading, a
user's ledger with its audit, re-syncing a payment from Stripe when its webhook never came; and
the record of who ran each command and why."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import stripe

from devstack.serve import ServerThread
from devstack.stripe_standin import StripeStandinSettings
from devstack.stripe_standin import create_app as stripe_standin
from ops.admin import (
    AdminError,
    command_names,
    dead_letters,
    ledger,
    main,
    queue_health,
    refund_reading,
    replay_job,
    resync_payment,
)
from tests.db.conftest import connect, make_user
from tests.money.conftest import begin_purchase, record_intent

STRIPE_KEY = "sk_test_admin_resync"
AS_OPERATOR = ["--operator", "alice@mimivibe", "--reason", "ticket 42"]


@pytest.fixture(scope="module")
def db_url(database_factory) -> str:
    return database_factory(migrate=True)


def add_job(conn, user_id, status: str, *, cost: int = 1, attempts: int = 0, max_attempts: int = 5,
            age_seconds: int = 0, retry_in: int | None = None, lease_expired: bool = False) -> uuid.UUID:
    row = conn.execute(
        "insert into public.jobs (user_id, dedupe_key, status, payload, cost_stars, attempts,"
        " max_attempts, created_at, next_retry_at, started_at, visibility_timeout_secs)"
        " values (%s, %s, %s, '{}'::jsonb, %s, %s, %s, now() - make_interval(secs => %s),"
        " now() + make_interval(secs => %s), now() - make_interval(secs => %s), 60) returning id",
        (user_id, f"test:{uuid.uuid4()}", status, cost, attempts, max_attempts, age_seconds,
         retry_in, 600 if lease_expired else 1),
    ).fetchone()
    return row[0]


def test_queue_health_reports_depth_lag_retries_due_and_dead_letters(database_factory) -> None:
    url = database_factory(migrate=True)
    with connect(url) as conn:
        user = make_user(conn)
        add_job(conn, user, "queued", age_seconds=90)
        add_job(conn, user, "queued", age_seconds=5)
        add_job(conn, user, "processing", attempts=1, lease_expired=True)
        add_job(conn, user, "failed", attempts=1, retry_in=-5)
        add_job(conn, user, "failed", attempts=1, retry_in=300)
        add_job(conn, user, "dlq", attempts=5)
        add_job(conn, user, "succeeded", attempts=1)

    health = queue_health(url)

    assert health["depth"] == 5
    assert (health["queued"], health["processing"], health["failed"]) == (2, 1, 2)
    assert health["retries_due"] == 1
    assert health["expired_leases"] == 1
    assert health["dead_letters"] == 1
    assert 89 <= health["oldest_queued_age_seconds"] < 200


def test_replay_puts_a_dead_letter_back_with_more_attempts_and_no_new_charge(db_url) -> None:
    with connect(db_url) as conn:
        user = make_user(conn, stars=3)
        job = add_job(conn, user, "dlq", attempts=5, max_attempts=5)
        live = add_job(conn, user, "queued")

    result = replay_job(db_url, str(job), extra_attempts=2)

    assert result["status"] == "queued" and result["max_attempts"] == 7 and result["attempts"] == 5
    with connect(db_url) as conn:
        row = conn.execute("select status, enqueued_at, star_balance from public.jobs j"
                           " join public.users u on u.id = j.user_id where j.id = %s",
                           (job,)).fetchone()
    assert row == ("queued", None, 3)
    with pytest.raises(AdminError, match="Only dead-lettered"):
        replay_job(db_url, str(live))


def test_refund_reading_gives_the_stars_back_once_and_only_for_finished_jobs(db_url) -> None:
    with connect(db_url) as conn:
        user = make_user(conn, stars=1)
        done = add_job(conn, user, "succeeded", cost=2, attempts=1)
        running = add_job(conn, user, "processing", attempts=1)

    first = refund_reading(db_url, str(done), "wrong cards shown")
    second = refund_reading(db_url, str(done))

    assert (first["refunded_stars"], first["already_refunded"]) == (2, False)
    assert (second["refunded_stars"], second["already_refunded"]) == (0, True)
    view = ledger(db_url, str(user))
    assert view["user"]["star_balance"] == 3
    assert view["audit"] == []
    assert view["transactions"][0]["dedupe_key"] == f"reading-refund:{done}"
    with pytest.raises(AdminError, match="still processing"):
        refund_reading(db_url, str(running))
    with pytest.raises(AdminError, match="No job"):
        refund_reading(db_url, str(uuid.uuid4()))


def test_ledger_command_exits_nonzero_when_the_audit_finds_a_problem(db_url, capsys) -> None:
    with connect(db_url) as conn:
        user = make_user(conn, stars=4)
        assert main([*AS_OPERATOR, "--database-url", db_url, "--json", "ledger", str(user)]) == 0
        conn.execute("update public.users set star_balance = 9 where id = %s", (user,))

    assert main([*AS_OPERATOR, "--database-url", db_url, "--json", "ledger", str(user)]) == 1
    printed = capsys.readouterr().out
    assert "cached_balance_differs_from_ledger_sum" in printed


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[stripe.StripeClient]:
    # No webhook endpoint: the events Stripe would send never arrive.
    app = stripe_standin(StripeStandinSettings(api_key=STRIPE_KEY, webhook_secret="whsec_unused"))
    with ServerThread(app, name="stripe-standin") as server:
        yield stripe.StripeClient(STRIPE_KEY, base_addresses={"api": server.url},
                                  max_network_retries=0)


def test_resync_credits_a_payment_whose_webhook_never_arrived_exactly_once(db_url, stripe_server) -> None:
    with connect(db_url) as conn:
        user = make_user(conn)
    from psycopg.rows import dict_row

    with connect(db_url, row_factory=dict_row) as conn:
        payment = begin_purchase(conn, user, "basic")
        intent = stripe_server.v1.payment_intents.create(params={
            "amount": payment["amount"], "currency": "thb", "payment_method": "pm_card_visa",
            "confirm": True, "metadata": {"payment_id": payment["id"]},
        })
        record_intent(conn, payment["id"], intent.id)
    assert intent.status == "succeeded"

    first = resync_payment(db_url, intent.id, stripe_client=stripe_server)
    again = resync_payment(db_url, intent.id, stripe_client=stripe_server)

    assert [a["type"] for a in first["applied"]] == ["payment_intent.succeeded"]
    assert again["applied"][0]["duplicate"] is True
    view = ledger(db_url, str(user))
    assert view["user"]["star_balance"] == 17
    assert view["audit"] == []

    stripe_server.v1.refunds.create(params={"payment_intent": intent.id})
    refunded = resync_payment(db_url, intent.id, stripe_client=stripe_server)

    assert [a["type"] for a in refunded["applied"]][-1] == "refund.updated"
    assert ledger(db_url, str(user))["user"]["star_balance"] == 0


def test_cli_prints_queue_health_as_json(db_url, capsys) -> None:
    assert main([*AS_OPERATOR, "--database-url", db_url, "--json", "queue-health"]) == 0
    assert "oldest_queued_age_seconds" in json.loads(capsys.readouterr().out)


def actions(url: str) -> list[dict]:
    from psycopg.rows import dict_row

    with connect(url, row_factory=dict_row) as conn:
        return conn.execute("select * from private.operator_actions order by id").fetchall()


@pytest.mark.parametrize("command", command_names())
def test_every_command_is_refused_without_an_operator_or_a_reason(database_factory, command,
                                                                  monkeypatch, capsys) -> None:
    url = database_factory(migrate=True)
    monkeypatch.delenv("MIMIVIBE_OPERATOR", raising=False)
    user = "00000000-0000-0000-0000-000000000001"
    argv = ["--database-url", url, command, *{
        "replay-job": ["x"], "refund-reading": ["x"], "ledger": ["x"], "resync-payment": ["x"],
        "export-user": [user], "erase-user": [user], "reapply-erasures": ["--from", url],
    }.get(command, [])]

    assert main(["--reason", "r", *argv]) == 2
    assert "--operator" in capsys.readouterr().err
    assert main(["--operator", "alice", *argv]) == 2
    assert "--reason" in capsys.readouterr().err
    monkeypatch.setenv("MIMIVIBE_OPERATOR", "   ")
    assert main(["--reason", "r", *argv]) == 2
    assert actions(url) == []


def test_every_command_records_who_ran_it_why_and_how_it_ended(database_factory, monkeypatch,
                                                               capsys) -> None:
    url = database_factory(migrate=True)
    with connect(url) as conn:
        user = make_user(conn, stars=2)
        job = add_job(conn, user, "dlq", attempts=5, max_attempts=5)
    monkeypatch.setenv("MIMIVIBE_OPERATOR", "bob@mimivibe")

    assert main(["--reason", "user wrote in", "--database-url", url, "replay-job", str(job)]) == 0
    assert main(["--operator", "carol", "--reason", "again", "--database-url", url,
                 "replay-job", str(job)]) == 2
    assert main(["--operator", "carol", "--reason", "bad key", "--database-url", url,
                 "resync-payment", "pi_x", "--stripe-key", "sk_test_secret_value",
                 "--stripe-api-base", "http://127.0.0.1:9"]) == 2
    capsys.readouterr()

    done, refused, stripe_down = actions(url)
    assert (done["operator"], done["reason"], done["command"]) == (
        "bob@mimivibe", "user wrote in", "replay-job")
    assert done["arguments"] == {"job_id": str(job), "extra_attempts": 3}
    assert (done["exit_code"], done["error"]) == (0, None) and done["finished_at"]
    assert (refused["operator"], refused["exit_code"]) == ("carol", 2)
    assert "Only dead-lettered" in refused["error"]
    assert stripe_down["exit_code"] == 2
    assert "sk_test_secret_value" not in json.dumps(stripe_down, default=str)
    assert url not in json.dumps([done, refused, stripe_down], default=str)

    # Reading the trail is an operator command too, and is recorded like the others.
    assert main(["--reason", "audit", "--database-url", url, "--json", "actions"]) == 0
    listed = json.loads(capsys.readouterr().out)["actions"]
    assert [a["command"] for a in listed] == ["actions", "resync-payment", "replay-job",
                                              "replay-job"]
    assert listed[0]["exit_code"] is None  # read before its own outcome was written


def test_operator_actions_are_closed_to_the_api_roles_and_append_only(database_factory) -> None:
    url = database_factory(migrate=True)
    assert main([*AS_OPERATOR, "--database-url", url, "queue-health"]) == 0
    with connect(url) as conn:
        for role in ("anon", "authenticated", "service_role"):
            for sql in ("select * from private.operator_actions",
                        "insert into private.operator_actions (operator, reason, command)"
                        " values ('mallory', 'x', 'y')"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                    conn.execute(f"set local role {role}")
                    conn.execute(sql)
        assert conn.execute("select relrowsecurity from pg_class"
                            " where oid = 'private.operator_actions'::regclass").fetchone() == (True,)
        for sql in ("update private.operator_actions set operator = 'mallory'",
                    "update private.operator_actions set exit_code = 1",
                    "delete from private.operator_actions",
                    "truncate private.operator_actions"):
            with pytest.raises(psycopg.Error) as refused, conn.transaction():
                conn.execute(sql)
            assert refused.value.sqlstate == "MV006", sql
        assert conn.execute("select operator, exit_code from private.operator_actions"
                            ).fetchall() == [("alice@mimivibe", 0)]


def test_dead_letters_lists_reason_user_and_age_newest_first_in_pages(database_factory,
                                                                      capsys) -> None:
    url = database_factory(migrate=True)
    with connect(url) as conn:
        user = make_user(conn)
        jobs = [add_job(conn, user, "dlq", attempts=5, age_seconds=100 * (5 - i)) for i in range(5)]
        add_job(conn, user, "failed", attempts=1)
        conn.execute("update public.jobs set last_error = 'validator refused the answer',"
                     " completed_at = now() - interval '90 seconds' where status = 'dlq'")

    first = dead_letters(url, limit=2)
    second = dead_letters(url, limit=2, before=first["next"])
    last = dead_letters(url, limit=2, before=second["next"])

    pages = [first["dead_letters"], second["dead_letters"], last["dead_letters"]]
    assert [[r["job_id"] for r in page] for page in pages] == [
        [jobs[4], jobs[3]], [jobs[2], jobs[1]], [jobs[0]]]
    assert last["next"] is None
    row = first["dead_letters"][0]
    assert (row["user_id"], row["reason"], row["attempts"]) == (
        user, "validator refused the answer", 5)
    assert 89 <= row["age_seconds"] < 200
    with pytest.raises(AdminError):
        dead_letters(url, before="nonsense")

    assert main([*AS_OPERATOR, "--database-url", url, "--json", "dead-letters", "--limit",
                 "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["dead_letters"]) == 3 and printed["next"]
