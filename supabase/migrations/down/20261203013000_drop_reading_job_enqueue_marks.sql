comment on column public.jobs.enqueued_at is null;

create function public.mark_reading_jobs_enqueued(p_job_ids uuid[])
returns integer
language sql
volatile
set search_path = ''
as $$
  with marked as (
    update public.jobs j set enqueued_at = pg_catalog.now()
     where j.id = any (p_job_ids) and j.status = 'queued' and j.enqueued_at is null
    returning 1
  )
  select pg_catalog.count(*)::integer from marked
$$;

create function public.release_reading_jobs_enqueued(p_job_ids uuid[])
returns integer
language sql
volatile
set search_path = ''
as $$
  with released as (
    update public.jobs j set enqueued_at = null
     where j.id = any (p_job_ids)
       and case j.status when 'queued' then true when 'failed' then true
                         when 'processing' then true else false end
       and j.enqueued_at is not null
    returning 1
  )
  select pg_catalog.count(*)::integer from released
$$;

revoke all on function public.mark_reading_jobs_enqueued(uuid[])
  from public, anon, authenticated;
revoke all on function public.release_reading_jobs_enqueued(uuid[])
  from public, anon, authenticated;
grant execute on function public.mark_reading_jobs_enqueued(uuid[]) to service_role;
grant execute on function public.release_reading_jobs_enqueued(uuid[]) to service_role;
