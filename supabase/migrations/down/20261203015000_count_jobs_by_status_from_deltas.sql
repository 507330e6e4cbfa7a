-- Restores 20261203003300's queue_health(), then drops the status log, its triggers and totals.
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
  -- Materialized, so that each count runs once although depth adds three of them up.
  with q as materialized (
    select
      (select pg_catalog.count(*) from public.jobs j where j.status = 'queued') as queued,
      (select pg_catalog.count(*) from public.jobs j where j.status = 'processing')
        as processing,
      (select pg_catalog.count(*) from public.jobs j where j.status = 'failed') as failed,
      (select pg_catalog.count(*) from public.jobs j
        where j.status = 'failed' and j.next_retry_at <= pg_catalog.now()) as retries_due,
      (select pg_catalog.count(*) from public.jobs j
        where j.status = 'processing'
          and private.lease_expires_at(j.started_at, j.visibility_timeout_secs)
              < pg_catalog.now()) as expired_leases,
      (select pg_catalog.count(*) from public.jobs j where j.status = 'dlq') as dead_letters,
      (select pg_catalog.min(j.created_at) from public.jobs j where j.status = 'queued')
        as oldest
  )
  select q.queued + q.processing + q.failed, q.queued, q.processing, q.failed, q.retries_due,
         q.expired_leases, q.dead_letters, q.oldest,
         coalesce(extract(epoch from pg_catalog.now() - q.oldest)::double precision, 0),
         pg_catalog.now()
    from q
$$;

revoke all on function public.queue_health() from public, anon, authenticated;
grant execute on function public.queue_health() to service_role;

drop trigger jobs_log_inserted_status on public.jobs;
drop trigger jobs_log_updated_status on public.jobs;
drop trigger jobs_log_deleted_status on public.jobs;
drop function private.job_status_counts();
drop function private.fold_job_status_deltas();
drop function private.log_inserted_jobs();
drop function private.log_updated_jobs();
drop function private.log_deleted_jobs();
drop table private.job_status_deltas;
drop table private.job_status_totals;
