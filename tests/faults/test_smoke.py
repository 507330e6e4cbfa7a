"""The suite's stack works end to end before any fault."""

from __future__ import annotations

from tests.faults.stack import FaultStack, wait_for


def test_a_paid_reading_completes_without_faults(healthy: FaultStack) -> None:
    user = healthy.funded_user()
    asked = healthy.ask(user)
    assert asked.status == 202, asked.response.text
    healthy.converge()
    job_id = asked.response.json()["job_id"]
    wait_for("the reading", lambda: healthy.sql(
        "select 1 from public.tarot_readings where job_id = %s", (job_id,)))
