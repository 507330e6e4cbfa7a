-- queue_health(): one row describing the reading queue as Postgres (the source of truth) sees
-- it, for the `python -m ops.admin queue-health` command and the queue-lag metric.
--   depth                     open jobs: queued + processing + failed (waiting for a retry)
--   oldest_queued_age_seconds age of the oldest queued job (0 when none): the queue lag
--   retries_due               failed jobs whose retry time has come
--   expired_leases            processing jobs whose worker's lease ran out
--   dead_letters              jobs in dlq

create function public.queue_health()
returns table (
  depth bigint,
  queued bigint,
  processing bigint,
  failed bigint,
  retries_due bigint,
  expired_leases bigint,
  dead_letters bigint,
  oldest_queued_at timestamptz,
  oldest_queued_age_seconds double precision,
  checked_at timestamptz
)
language sql
stable
set search_path = ''
as $$
  select
    pg_catalog.count(*) filter (where j.status in ('queued', 'processing', 'failed')),
    pg_catalog.count(*) filter (where j.status = 'queued'),
    pg_catalog.count(*) filter (where j.status = 'processing'),
    pg_catalog.count(*) filter (where j.status = 'failed'),
    pg_catalog.count(*) filter (where j.status = 'failed' and j.next_retry_at <= pg_catalog.now()),
    pg_catalog.count(*) filter (
      where j.status = 'processing'
        and j.started_at + pg_catalog.make_interval(secs => j.visibility_timeout_secs)
            < pg_catalog.now()),
    pg_catalog.count(*) filter (where j.status = 'dlq'),
    pg_catalog.min(j.created_at) filter (where j.status = 'queued'),
    coalesce(extract(epoch from pg_catalog.now()
      - pg_catalog.min(j.created_at) filter (where j.status = 'queued'))::double precision, 0),
    pg_catalog.now()
  from public.jobs j
  -- Succeeded jobs (nearly all rows) are skipped through the (status, created_at) index.
  where j.status in ('queued', 'processing', 'failed', 'dlq')
$$;

revoke all on function public.queue_health() from public, anon, authenticated;
grant execute on function public.queue_health() to service_role;
