-- release_reading_jobs_enqueued reaches its jobs through the primary key, one probe per id,
-- instead of intersecting the open-job indexes (a BitmapAnd that read every open job).
-- Same rows released, same count returned.

create or replace function public.release_reading_jobs_enqueued(p_job_ids uuid[])
returns integer
language sql
volatile
set search_path = ''
as $$
  with ids as (
    select distinct r.id from pg_catalog.unnest(p_job_ids) as r (id) where r.id is not null
  ),
  released as (
    update public.jobs j set enqueued_at = null
      from ids
     where j.id = ids.id
       and j.status in ('queued', 'failed', 'processing')
       and j.enqueued_at is not null
    returning 1
  )
  select pg_catalog.count(*)::integer from released
$$;

revoke all on function public.release_reading_jobs_enqueued(uuid[])
  from public, anon, authenticated;
grant execute on function public.release_reading_jobs_enqueued(uuid[]) to service_role;
