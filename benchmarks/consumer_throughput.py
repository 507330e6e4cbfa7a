"""Jobs per second drained by one job-consumer invocation with the offline reader, next to the
bare round trips a batch needs, measured in the same run.

    .venv/bin/python -m benchmarks.consumer_throughput [--jobs 300] [--batch 10]

Starts a throwaway PostgreSQL cluster (or uses DATABASE_URL's server), a migrated database, the
REST gateway and a Redis behind the Upstash bridge (both in this process), creates the jobs with
the create-reading SQL function and streams them. Then:

1. one consumer invocation drains them all: jobs/s end to end;
2. the same work split into its parts, on fresh jobs and a fresh stream: taking a batch of
   doorbells off the stream (XREADGROUP with NOACK, then XDEL), the SQL claim of a batch, the
   offline pipeline per job and the SQL finish of a batch.

The parts add up to what a batch cannot avoid; the gap to (1) is the consumer's own overhead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import jwt
import psycopg
from pydantic import SecretStr

SECRET = "benchmark-secret-benchmark-secret-0123456789"
TOKEN = "benchmark-upstash-token"


def _key(role: str) -> SecretStr:
    return SecretStr(jwt.encode({"role": role, "iss": "supabase"}, SECRET, algorithm="HS256"))


def _as(url: str, user: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, f"{user}@{parts.hostname}:{parts.port}", parts.path, "", ""))


def _create_jobs(database_url: str, count: int) -> list[str]:
    """`count` jobs from the create-reading SQL function, one user per 50 jobs."""
    ids: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        while len(ids) < count:
            user = conn.execute(
                "insert into public.users (external_id, external_provider) values (%s, 'custom')"
                " returning id", (uuid.uuid4().hex,)).fetchone()
            assert user is not None
            conn.execute("select private.apply_wallet_change(%s, 'STAR', 100, 'purchase', %s)",
                         (user[0], f"bench:{uuid.uuid4()}"))
            for _ in range(min(50, count - len(ids))):
                row = conn.execute(
                    "select public.create_reading_job(%s, %s, 'h', 'งานใหม่ปีหน้าจะดีไหม', 3,"
                    " 'th', 1000) ->> 'job_id'", (user[0], uuid.uuid4().hex)).fetchone()
                assert row is not None
                ids.append(str(row[0]))
    return ids


@contextmanager
def _timed(samples: list[float]) -> Iterator[None]:
    started = time.perf_counter()
    yield
    samples.append(time.perf_counter() - started)


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:7.2f} ms"


def run(database_url: str, jobs: int, batch: int, tmp: Path) -> None:
    from devstack.gateway import GatewaySettings
    from devstack.gateway import create_app as gateway_app
    from devstack.redis_server import RedisServer
    from devstack.serve import ServerThread
    from devstack.upstash_bridge import create_app as bridge_app
    from shared.consumer import ConsumerConfig, JobConsumer
    from shared.db import Database
    from shared.pipeline.models import DrawnCard
    from shared.pipeline.offline import OfflineReader
    from shared.pipeline.run import run_pipeline
    from shared.queue import ReadingQueue
    from shared.redis import build_redis

    with ExitStack() as stack:
        gateway = stack.enter_context(ServerThread(gateway_app(GatewaySettings(
            database_url=_as(database_url, "authenticator"), jwt_secret=SECRET,
            pool_max=4)), name="gateway"))
        redis = stack.enter_context(RedisServer(tmp / "redis"))
        bridge = stack.enter_context(ServerThread(bridge_app(redis.url, TOKEN), name="bridge"))
        client = build_redis(bridge.url, TOKEN)
        stack.callback(client.close)
        database = Database(gateway.url, anon_key=_key("anon"), service_role_key=_key("service_role"))
        stack.callback(database.close)
        reader = OfflineReader()

        # 1. One invocation, end to end.
        queue = ReadingQueue(client, stream="bench:drain")
        queue.enqueue(_create_jobs(database_url, jobs))
        consumer = JobConsumer(database=database, queue=queue, provider=lambda: reader,
                               config=ConsumerConfig(batch_size=batch, job_budget_seconds=0.01,
                                                     sweep_limit=0))
        report = consumer.run(deadline=time.monotonic() + 3600, max_jobs=jobs)
        rate = report.claimed / (report.duration_ms / 1000)

        # 2. The parts, batch by batch, on fresh jobs.
        parts: dict[str, list[float]] = {"read": [], "claim": [], "pipeline": [], "finish": []}
        queue = ReadingQueue(client, stream="bench:parts")
        queue.enqueue(_create_jobs(database_url, jobs))
        service = database.service
        while True:
            with _timed(parts["read"]):
                entries = queue.read("bench", batch)
            if not entries:
                parts["read"].pop()
                break
            claim_params: dict[str, Any] = {"p_job_ids": [e.job_id for e in entries],
                                            "p_worker_id": "bench"}
            with _timed(parts["claim"]):
                claims: Any = service.rpc("claim_reading_jobs", claim_params).execute().data
            results = []
            for claim in claims:
                payload = claim["payload"]
                cards = [DrawnCard(position=c["position"], card_id=c["card_id"],
                                   orientation=c["orientation"]) for c in payload["cards"]]
                with _timed(parts["pipeline"]):
                    out = run_pipeline(payload["question"], payload["locale"], cards, reader)
                assert out.question_analysis is not None and out.tarot_reading is not None
                results.append({
                    "job_id": claim["job_id"], "attempt": claim["attempt"], "kind": "reading",
                    "question_analysis": out.question_analysis.model_dump(mode="json"),
                    "tarot_reading": out.tarot_reading.model_dump(mode="json"),
                    "processing_time_ms": out.processing_time_ms,
                    "prompt_version": out.prompt_version, "schema_version": out.schema_version})
            finish_params: dict[str, Any] = {"p_results": results}
            with _timed(parts["finish"]):
                service.rpc("finish_reading_jobs", finish_params).execute()

        per_batch = sum(statistics.median(parts[k]) for k in ("read", "claim", "finish"))
        per_job = per_batch / batch + statistics.median(parts["pipeline"])
        print(f"jobs: {jobs}, batch size: {batch} (gateway and Upstash bridge in this process)")
        print(f"one consumer invocation: {report.claimed} jobs in {report.duration_ms} ms "
              f"= {rate:7.1f} jobs/s ({report.succeeded} succeeded)")
        print("median cost of the parts:")
        print(f"  XREADGROUP + XDEL, batch   {_ms(parts['read'])}")
        print(f"  SQL claim of a batch       {_ms(parts['claim'])}")
        print(f"  offline pipeline per job   {_ms(parts['pipeline'])}")
        print(f"  SQL finish of a batch      {_ms(parts['finish'])}")
        print(f"parts alone allow {1 / per_job:7.1f} jobs/s; the consumer reaches "
              f"{rate * per_job:.0%} of that")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--batch", type=int, default=10)
    args = parser.parse_args()

    from devstack.database import apply_bootstrap, create_database, drop_database, with_database
    from devstack.postgres import PostgresCluster
    from ops.migrate import migrate_up

    tmp = Path(tempfile.mkdtemp(prefix="mimivibe-bench-"))
    cluster = None
    server = os.environ.get("DATABASE_URL")
    if server:
        server = with_database(server, "postgres")
    else:
        cluster = PostgresCluster(tmp / "pg")
        cluster.start()
        server = cluster.url
    name = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        database_url = create_database(server, name)
        apply_bootstrap(database_url)
        migrate_up(database_url)
        run(database_url, args.jobs, args.batch, tmp)
    finally:
        if cluster is not None:
            cluster.destroy()
        else:
            drop_database(server, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
