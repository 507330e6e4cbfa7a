create or replace function public.queue_health()
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
