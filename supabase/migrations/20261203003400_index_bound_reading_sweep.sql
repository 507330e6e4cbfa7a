-- The consumer's sweep (reading_jobs_to_enqueue) driven by the partial and status indexes: each
-- kind of due job comes, oldest first, from an index that holds only candidates of that kind,
-- instead of one pass over every open job (most of which are on the stream, leased or waiting
-- for their retry) followed by a sort:
--   queued                        jobs_status_created_idx (status, created_at)
--   failed, retry due             jobs_retry_due_idx (next_retry_at), partial on failed
--   processing, lease expired     jobs_lease_expiry_idx (lease end), partial on processing
-- No index mentions enqueued_at, so marking and releasing jobs stay HOT updates.
-- The p_limit oldest candidates of each kind are merged, and the p_limit oldest of those are
-- fetched by primary key and locked (skipping locked rows) with the full condition checked
-- again on the locked row, then marked, exactly as before. One difference: a candidate another
-- transaction holds locked is skipped and not replaced within this call (before, the scan went
-- on past it); the next run picks it up, as it does any job the sweep leaves.

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
      where j.status = 'queued'
        and j.created_at < pg_catalog.now() - pg_catalog.make_interval(secs => p_grace_secs)
        and (j.enqueued_at is null
             or j.enqueued_at < pg_catalog.now() - pg_catalog.make_interval(secs => p_stale_secs))
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
