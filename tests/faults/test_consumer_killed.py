"""A consumer killed in the middle of a job: its lease expires, another run completes the job
once, and the attempt number fences the dead one out."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from tests.faults.stack import FaultStack

ROOT = Path(__file__).resolve().parents[2]

# A real consumer process whose pipeline hangs once a job is claimed, until it is killed.
CONSUMER = textwrap.dedent("""
    import sys, threading, time
    from shared.bootstrap import services
    from shared.consumer import JobConsumer
    from shared.consumer_config import consumer_config
    from shared.pipeline.offline import OfflineReader

    class Hangs(OfflineReader):
        def analyse(self, question, locale):
            print("claimed", flush=True)
            threading.Event().wait()

    built = services()
    consumer = JobConsumer(database=built.database, queue=built.queue, provider=Hangs,
                           config=consumer_config(built.settings))
    consumer.run(deadline=time.monotonic() + 120)
""")


def test_a_consumer_killed_mid_job_leaves_it_to_the_next_run(healthy: FaultStack) -> None:
    user = healthy.funded_user()
    stars = healthy.stars(user)
    asked = healthy.ask(user)
    assert asked.status == 202, asked.response.text
    job_id = asked.response.json()["job_id"]

    env = {**os.environ, **healthy.stack.environment, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", CONSUMER], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stdout = process.stdout
    assert stdout is not None
    try:
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(stdout.readline()))
        reader.start()
        reader.join(timeout=60)
        assert line == ["claimed\n"], "the consumer process never claimed the job"
    finally:
        process.kill()
        process.wait(timeout=10)
    [row] = healthy.sql("select status, attempts from public.jobs where id = %s", (job_id,))
    assert (row["status"], row["attempts"]) == ("processing", 1)

    healthy.converge()

    [row] = healthy.sql("select status, attempts from public.jobs where id = %s", (job_id,))
    assert (row["status"], row["attempts"]) == ("succeeded", 2)
    tries = healthy.sql("select attempt_number, success, error_code from public.job_attempts "
                        "where job_id = %s order by attempt_number", (job_id,))
    assert [(t["attempt_number"], t["success"], t["error_code"]) for t in tries] == \
        [(1, False, "lease_expired"), (2, True, None)]
    assert healthy.stars(user) == stars - 1
