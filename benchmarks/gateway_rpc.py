"""Gateway RPC throughput vs calling the same SQL function directly with psycopg.

    .venv/bin/python -m benchmarks.gateway_rpc [--clients 16] [--calls 400]

Starts a throwaway PostgreSQL cluster, a fixture wallet function (conditional balance update
plus a ledger insert) and the gateway in worker processes of its own (one per CPU by default,
sharing the port), then runs the same number of calls at the same concurrency both ways,
interleaved, and prints requests/s and the ratio, with the CPU each side spent per call in the
gateway, the database and the load generator. The HTTP load generator is a minimal keep-alive
HTTP/1.1 client, so that it costs no more CPU than the psycopg baseline's client does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from multiprocessing.process import BaseProcess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import jwt
import psycopg

from devstack.database import apply_bootstrap, create_database
from devstack.ports import free_port
from devstack.postgres import PostgresCluster

SECRET = "benchmark-secret-benchmark-secret-0123456789"
START_BALANCE = 1_000_000

FIXTURE = """
create table public.bench_wallets (user_id uuid primary key, balance bigint not null
  check (balance >= 0));
create table public.bench_ledger (
  id bigint generated always as identity primary key,
  user_id uuid not null references public.bench_wallets,
  amount int not null check (amount <> 0),
  balance_after bigint not null,
  created_at timestamptz not null default now()
);
alter table public.bench_wallets enable row level security;
alter table public.bench_ledger enable row level security;
create function public.bench_wallet_change(p_user uuid, p_amount int) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_balance bigint;
begin
  update public.bench_wallets set balance = balance + p_amount
   where user_id = p_user and balance + p_amount >= 0
  returning balance into v_balance;
  if not found then
    raise exception using errcode = 'MV001', message = 'insufficient_stars';
  end if;
  insert into public.bench_ledger (user_id, amount, balance_after)
  values (p_user, p_amount, v_balance);
  return v_balance;
end $$;
revoke execute on function public.bench_wallet_change(uuid, int) from public, anon, authenticated;
grant execute on function public.bench_wallet_change(uuid, int) to service_role;
"""


def _login(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, "", ""))


def _serve(database_url: str, port: int, pool_max: int) -> None:
    """One gateway worker process; workers share the port (SO_REUSEPORT), like PostgREST's
    threads share its listening socket."""
    import uvloop

    from devstack.gateway import GatewaySettings, create_app
    from devstack.serve import listening_socket

    # The pool opens connections as concurrency asks for them (PostgREST's pool does too).
    settings = GatewaySettings(database_url=database_url, jwt_secret=SECRET, pool_max=pool_max)
    sock = listening_socket(port, reuse_port=True)

    async def serve() -> None:
        await create_app(settings).serve(sock, lambda: None, asyncio.Event())

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve())


async def _direct_worker(url: str, user: str, calls: int) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for _ in range(calls):
            await conn.execute("select public.bench_wallet_change(%s, %s)", (user, -1))


async def _http_worker(port: int, token: str, user: str, calls: int) -> None:
    body = json.dumps({"p_user": user, "p_amount": -1}).encode()
    request = (
        f"POST /rest/v1/rpc/bench_wallet_change HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\napikey: {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(calls):
            writer.write(request)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            payload = await reader.readexactly(length)
            if not status.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"gateway answered {status!r}: {payload!r}")
    finally:
        writer.close()


async def _timed(workers: list) -> float:
    started = time.perf_counter()
    await asyncio.gather(*workers)
    return time.perf_counter() - started


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _wait_for_port(port: int, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("gateway did not start")


def _stat_cpu(pid: int, *, reaped: bool = False) -> float:
    """User + system CPU seconds of a process (Linux /proc); with `reaped`, plus that of its
    children that have exited and been waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = (int(fields[11]) + int(fields[12])
             + (int(fields[13]) + int(fields[14]) if reaped else 0))
    return ticks / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(processes: list[BaseProcess]) -> float:
    """CPU time of the gateway workers, to report cost per call."""
    try:
        return sum(_stat_cpu(proc.pid) for proc in processes if proc.pid is not None)
    except OSError:
        return float("nan")


def _database_cpu(cluster: PostgresCluster) -> float:
    """CPU time of the whole PostgreSQL server: the postmaster, its live backends, and the
    backends that have already exited (the postmaster reaps them)."""
    try:
        postmaster = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
        total = _stat_cpu(postmaster, reaped=True)
        for task in Path(f"/proc/{postmaster}/task").iterdir():
            for child in (task / "children").read_text().split():
                with contextlib.suppress(OSError):  # a backend may exit meanwhile
                    total += _stat_cpu(int(child))
        return total
    except OSError:
        return float("nan")


def run(clients: int, calls: int, workers: int, rounds: int = 5) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="mimivibe-bench-"))
    cluster = PostgresCluster(root / "data")
    cluster.start()
    servers: list[BaseProcess] = []
    try:
        url = create_database(cluster.url, "bench")
        apply_bootstrap(url)
        users = [str(uuid.uuid4()) for _ in range(clients * 2)]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(FIXTURE)
            with conn.cursor() as cur:
                cur.executemany("insert into public.bench_wallets values (%s, %s)",
                                [(u, START_BALANCE) for u in users])
        direct_users, http_users = users[:clients], users[clients:]
        port = free_port()
        pool_per_worker = clients  # any worker may receive every client's connection
        for _ in range(workers):
            worker = multiprocessing.get_context("spawn").Process(
                target=_serve, args=(_login(url, "authenticator"), port, pool_per_worker),
                daemon=True)
            worker.start()
            servers.append(worker)
        _wait_for_port(port)
        time.sleep(1.0)  # let every worker load its schema cache before measuring
        token = jwt.encode({"role": "service_role", "exp": int(time.time()) + 3600}, SECRET,
                           algorithm="HS256")
        warm = max(calls // 10, 10)
        asyncio.run(_timed([_direct_worker(url, u, warm) for u in direct_users]))
        asyncio.run(_timed([_http_worker(port, token, u, warm) for u in http_users]))
        direct_runs: list[float] = []
        gateway_runs: list[float] = []
        cpu_before = _cpu_seconds(servers)
        direct_client_cpu = http_client_cpu = direct_db_cpu = gateway_db_cpu = 0.0
        for _ in range(rounds):  # interleaved, so background load hits both sides alike
            cpu, db = _own_cpu(), _database_cpu(cluster)
            direct_runs.append(asyncio.run(
                _timed([_direct_worker(url, u, calls) for u in direct_users])))
            direct_client_cpu += _own_cpu() - cpu
            direct_db_cpu += _database_cpu(cluster) - db
            cpu, db = _own_cpu(), _database_cpu(cluster)
            gateway_runs.append(asyncio.run(
                _timed([_http_worker(port, token, u, calls) for u in http_users])))
            http_client_cpu += _own_cpu() - cpu
            gateway_db_cpu += _database_cpu(cluster) - db
        gateway_cpu = _cpu_seconds(servers) - cpu_before
        direct, gateway = statistics.median(direct_runs), statistics.median(gateway_runs)
        with psycopg.connect(url) as conn:
            rows = conn.execute("select count(*), sum(%s - balance) from public.bench_wallets",
                                (START_BALANCE,)).fetchone()
            ledger = conn.execute("select count(*) from public.bench_ledger").fetchone()
        expected = 2 * clients * (calls * rounds + warm)
        if rows is None or ledger is None or rows[1] != expected or ledger[0] != expected:
            raise RuntimeError(f"ledger mismatch: {rows} {ledger}, expected {expected}")
        total = clients * calls
        per_call = 1e6 / (total * rounds)
        return {"direct_rps": total / direct, "gateway_rps": total / gateway,
                "ratio": direct / gateway,
                "gateway_cpu_us": gateway_cpu * per_call,
                "direct_client_cpu_us": direct_client_cpu * per_call,
                "http_client_cpu_us": http_client_cpu * per_call,
                "direct_db_cpu_us": direct_db_cpu * per_call,
                "gateway_db_cpu_us": gateway_db_cpu * per_call}
    finally:
        for server in servers:
            server.terminate()
            server.join(10)
        cluster.destroy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--calls", type=int, default=400, help="calls per client")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="gateway worker processes (default: one per CPU)")
    args = parser.parse_args(argv)
    result = run(args.clients, args.calls, args.workers)
    print(f"clients={args.clients} calls/client={args.calls} gateway workers={args.workers}")
    print(f"direct psycopg : {result['direct_rps']:8.0f} req/s (median of 5 interleaved runs)")
    print(f"gateway (HTTP) : {result['gateway_rps']:8.0f} req/s")
    print(f"ratio gateway/direct: {result['ratio']:.2f}")
    print(f"gateway CPU per call: {result['gateway_cpu_us']:.0f} us (all workers)")
    print(f"client CPU per call : direct {result['direct_client_cpu_us']:.0f} us, "
          f"HTTP load generator {result['http_client_cpu_us']:.0f} us")
    print(f"database CPU per call: direct {result['direct_db_cpu_us']:.0f} us, "
          f"through the gateway {result['gateway_db_cpu_us']:.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
