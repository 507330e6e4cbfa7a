create or replace function public.release_reading_jobs_enqueued(p_job_ids uuid[])
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
