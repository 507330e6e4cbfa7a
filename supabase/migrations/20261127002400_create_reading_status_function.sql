-- reading_status(job_id): the caller's own job and, once written, its reading, as one JSON
-- object (a set of at most one, so someone else's or an unknown job is simply no row). Runs as
-- the caller under RLS, with the owner check spelled out too.

create function public.reading_status(job_id uuid)
returns setof jsonb
language sql
stable
set search_path = ''
as $$
  select pg_catalog.jsonb_build_object(
           'job_id', j.id,
           'status', j.status,
           'attempts', j.attempts,
           'max_attempts', j.max_attempts,
           'reading_id', r.id,
           'reading', case when r.id is not null then pg_catalog.jsonb_build_object(
             'id', r.id,
             'question', r.question,
             'question_locale', r.question_locale,
             'card_count', r.card_count,
             'cards', r.cards,
             'question_analysis', r.question_analysis,
             'tarot_reading', r.tarot_reading,
             'summary', r.tarot_reading ->> 'summary',
             'advice', r.tarot_reading ->> 'advice',
             'prompt_version', r.prompt_version,
             'schema_version', r.schema_version,
             'created_at', r.created_at
           ) end,
           'refusal', j.result -> 'refusal',
           'last_error', j.last_error,
           'cost_stars', j.cost_stars,
           'cards', j.payload -> 'cards',
           'created_at', j.created_at,
           'completed_at', j.completed_at
         )
    from public.jobs j
    left join public.tarot_readings r on r.job_id = j.id
   where j.id = reading_status.job_id
     and j.user_id = (select auth.uid())
$$;

revoke all on function public.reading_status(uuid) from public, anon, authenticated, service_role;
grant execute on function public.reading_status(uuid) to authenticated;
