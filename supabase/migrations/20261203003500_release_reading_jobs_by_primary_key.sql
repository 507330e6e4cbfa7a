-- release_reading_jobs_enqueued reaches its jobs through the primary key, one probe per id,
-- instead of intersecting the open-job indexes (a BitmapAnd that read every open job). The
-- open-status test is written as a CASE, which no index matches, so the planner has only the
-- primary key to go by. Same rows released, same count returned.

create or replace function public.release_reading_jobs_enqueued(p_job_ids uuid[])
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

revoke all on function public.release_reading_jobs_enqueued(uuid[])
  from public, anon, authenticated;
grant execute on function public.release_reading_jobs_enqueued(uuid[]) to service_role;
