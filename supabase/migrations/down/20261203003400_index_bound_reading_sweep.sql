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
  with due as (
    select j.id
      from public.jobs j
     where j.status in ('queued', 'failed', 'processing')
       and (
         (j.status = 'queued'
            and j.created_at < pg_catalog.now() - pg_catalog.make_interval(secs => p_grace_secs))
         or (j.status = 'failed' and j.next_retry_at <= pg_catalog.now())
         or (j.status = 'processing'
            and j.started_at + pg_catalog.make_interval(secs => j.visibility_timeout_secs)
                < pg_catalog.now())
       )
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
