-- The consumer's sweep (reading_jobs_to_enqueue) driven by partial indexes: each kind of due
-- job comes from an index that holds only candidates of that kind, in created_at order where it
-- can, instead of one pass over every open job (most of which are on the stream and not due).
--   queued, never streamed        jobs_queued_unstreamed_idx (created_at, id)
--   queued, streamed long ago     jobs_queued_streamed_idx (enqueued_at)
--   failed, retry due             jobs_retry_due_idx (next_retry_at)
--   processing, lease expired     jobs_lease_expiry_idx (lease end)
-- The p_limit oldest candidates of each kind are merged, and the p_limit oldest of those are
-- fetched by primary key and locked (skipping locked rows) with the full condition checked again on the locked row, then
-- marked, exactly as before. One difference: a candidate another transaction holds locked is
-- skipped and not replaced within this call (before, the scan went on past it); the next run
-- picks it up, as it does any job the sweep leaves.

create index jobs_queued_unstreamed_idx on public.jobs (created_at, id)
  where status = 'queued' and enqueued_at is null;
create index jobs_queued_streamed_idx on public.jobs (enqueued_at)
  where status = 'queued' and enqueued_at is not null;

create or replace function public.reading_jobs_to_enqueue(
  p_limit integer default 100,
  p_grace_secs integer default 10,
  p_stale_secs integer default 300
)
returns jsonb
language sql
volatile
set search_path = ''
as $$
  with candidates as (
    (select j.id, j.created_at from public.jobs j
      where j.status = 'queued' and j.enqueued_at is null
        and j.created_at < pg_catalog.now() - pg_catalog.make_interval(secs => p_grace_secs)
      order by j.created_at
      limit greatest(p_limit, 0))
    union all
    (select j.id, j.created_at from public.jobs j
      where j.status = 'queued' and j.enqueued_at is not null
        and j.enqueued_at < pg_catalog.now() - pg_catalog.make_interval(secs => p_stale_secs)
        and j.created_at < pg_catalog.now() - pg_catalog.make_interval(secs => p_grace_secs)
      order by j.created_at
      limit greatest(p_limit, 0))
    union all
    (select j.id, j.created_at from public.jobs j
      where j.status = 'failed' and j.next_retry_at <= pg_catalog.now()
        and (j.enqueued_at is null
             or j.enqueued_at < pg_catalog.now() - pg_catalog.make_interval(secs => p_stale_secs))
      order by j.created_at
      limit greatest(p_limit, 0))
    union all
    (select j.id, j.created_at from public.jobs j
      where j.status = 'processing'
        and private.lease_expires_at(j.started_at, j.visibility_timeout_secs) < pg_catalog.now()
        and (j.enqueued_at is null
             or j.enqueued_at < pg_catalog.now() - pg_catalog.make_interval(secs => p_stale_secs))
      order by j.created_at
      limit greatest(p_limit, 0))
  ),
  due as (
    -- The full condition again on the locked row, as a CASE over the status: no index matches
    -- it, so the rows come by primary key rather than from a scan of every open job.
    select j.id
      from public.jobs j
     where j.id = any (array(select c.id from candidates c order by c.created_at
                              limit greatest(p_limit, 0)))
       and case j.status
             when 'queued' then
               j.created_at < pg_catalog.now() - pg_catalog.make_interval(secs => p_grace_secs)
             when 'failed' then j.next_retry_at <= pg_catalog.now()
             when 'processing' then
               j.started_at + pg_catalog.make_interval(secs => j.visibility_timeout_secs)
                 < pg_catalog.now()
             else false
           end
       and (j.enqueued_at is null
            or j.enqueued_at < pg_catalog.now() - pg_catalog.make_interval(secs => p_stale_secs))
     order by j.created_at
     limit greatest(p_limit, 0)
       for no key update skip locked
  ),
  marked as (
    update public.jobs j set enqueued_at = pg_catalog.now()
      from due where j.id = due.id
    returning j.id, j.created_at
  )
  select coalesce(pg_catalog.jsonb_agg(m.id order by m.created_at), '[]'::jsonb) from marked m
$$;

revoke all on function public.reading_jobs_to_enqueue(integer, integer, integer)
  from public, anon, authenticated;
grant execute on function public.reading_jobs_to_enqueue(integer, integer, integer)
  to service_role;
