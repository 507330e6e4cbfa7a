-- The sweep marks the jobs it returns as streamed (enqueued_at) before the consumer adds them
-- to the stream. When that XADD fails (Redis unreachable), the consumer gives the marks back
-- with this function, so the next run streams those jobs at once instead of after the sweep's
-- stale interval. Returns how many marks it cleared. Service_role only (the job consumer).

create function public.release_reading_jobs_enqueued(p_job_ids uuid[])
returns integer
language sql
volatile
set search_path = ''
as $$
  with released as (
    update public.jobs j set enqueued_at = null
     where j.id = any (p_job_ids)
       and j.status in ('queued', 'failed', 'processing')
       and j.enqueued_at is not null
    returning 1
  )
  select pg_catalog.count(*)::integer from released
$$;

revoke all on function public.release_reading_jobs_enqueued(uuid[])
  from public, anon, authenticated;
grant execute on function public.release_reading_jobs_enqueued(uuid[]) to service_role;
