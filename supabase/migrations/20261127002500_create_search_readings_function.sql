-- Reading search. Thai has no spaces and PostgreSQL no Thai text-search configuration, so a
-- search is: normalize the query exactly as the stored question is normalized
-- (private.normalize_question), split it into terms at white space, and keep the caller's
-- readings whose normalized question contains every term (ILIKE with \ % _ escaped, over the
-- trigram-indexed column). Substrings count: รัก finds ความรัก and also รักษา, งาน finds
-- แต่งงาน; readings where every term stands as a whole word (bounded by the text's ends,
-- spaces or punctuation) rank first.
--
-- Keyset pagination by (created_at, id), newest first within each rank. The cursor is the last
-- row of the previous page; its rank is read back from that row, so a page continues in the
-- right rank and readings created meanwhile (newer than the cursor) never shift a page.

-- The search terms of a query: normalized, split, de-duplicated, in order, at most 10, each at
-- most 100 characters. Security definer only to reach the private normalizer (the API roles
-- have no usage on schema private); it reads no table.
create function public.reading_search_terms(p_query text)
returns text[]
language sql
immutable
security definer
set search_path = ''
as $$
  select coalesce(pg_catalog.array_agg(t.term order by t.first), '{}'::text[])
    from (
      select left(s.term, 100) as term, pg_catalog.min(s.n) as first
        from pg_catalog.unnest(pg_catalog.string_to_array(
               private.normalize_question(left(coalesce(p_query, ''), 500)), ' '
             )) with ordinality as s (term, n)
       where s.term <> ''
       group by left(s.term, 100)
       order by pg_catalog.min(s.n)
       limit 10
    ) t
$$;

create function public.search_readings(
  query text,
  before_created_at timestamptz default null,
  before_id uuid default null,
  page_size integer default 20
)
returns table (
  id uuid,
  job_id uuid,
  question text,
  question_locale text,
  card_count integer,
  cards jsonb,
  question_analysis jsonb,
  tarot_reading jsonb,
  created_at timestamptz,
  whole_word boolean
)
language plpgsql
stable
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_user_id uuid := (select auth.uid());
  v_terms text[];
  v_longest text;
  v_patterns text[];
  v_words text[];
  v_cursor_whole boolean;
  v_limit integer := least(greatest(coalesce(page_size, 20), 1), 100);
begin
  if v_user_id is null then
    return;
  end if;
  if (before_created_at is null) <> (before_id is null) then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'Pass both before_created_at and before_id, or neither.';
  end if;

  v_terms := public.reading_search_terms(query);
  -- LIKE patterns (\ % _ escaped; backslash is LIKE's default escape) and whole-word regular
  -- expressions (every non-alphanumeric ASCII character escaped), one per term. Word characters
  -- are Latin letters, digits and the Thai block.
  select pg_catalog.array_agg('%' || replace(replace(replace(t, '\', '\\'), '%', '\%'), '_', '\_')
                              || '%'),
         pg_catalog.array_agg('(^|[^a-z0-9\u00c0-\u024f\u0e00-\u0e7f])'
                              || pg_catalog.regexp_replace(t, '([^a-z0-9\u0080-\uffff])', '\\\1', 'g')
                              || '($|[^a-z0-9\u00c0-\u024f\u0e00-\u0e7f])')
    into v_patterns, v_words
    from pg_catalog.unnest(v_terms) as t;
  v_patterns := coalesce(v_patterns, '{}'::text[]);
  v_words := coalesce(v_words, '{}'::text[]);
  -- The longest term as a plain ILIKE predicate, which the trigram index can serve.
  select '%' || replace(replace(replace(t, '\', '\\'), '%', '\%'), '_', '\_') || '%'
    into v_longest
    from pg_catalog.unnest(v_terms) as t
   order by char_length(t) desc
   limit 1;

  if before_id is not null then
    select r.question_normalized ~ all (v_words) into v_cursor_whole
      from public.tarot_readings r
     where r.id = before_id and r.user_id = v_user_id;
    if not found then
      raise exception using errcode = 'MV006', message = 'validation_error',
        detail = 'The pagination cursor does not name one of your readings.';
    end if;
  end if;

  return query
    select m.id, m.job_id, m.question, m.question_locale, m.card_count, m.cards,
           m.question_analysis, m.tarot_reading, m.created_at, m.whole
      from (
        select r.*, r.question_normalized ~ all (v_words) as whole
          from public.tarot_readings r
         where r.user_id = v_user_id
           and (v_longest is null or r.question_normalized ilike v_longest)
           and r.question_normalized ilike all (v_patterns)
      ) m
     where before_id is null
        or (m.whole and v_cursor_whole
            and (m.created_at, m.id) < (before_created_at, before_id))
        or (not m.whole and (v_cursor_whole
            or (m.created_at, m.id) < (before_created_at, before_id)))
     order by m.whole desc, m.created_at desc, m.id desc
     limit v_limit;
end
$$;

revoke all on function public.reading_search_terms(text) from public, anon, authenticated;
revoke all on function public.search_readings(text, timestamptz, uuid, integer)
  from public, anon, authenticated, service_role;
grant execute on function public.reading_search_terms(text) to authenticated, service_role;
grant execute on function public.search_readings(text, timestamptz, uuid, integer)
  to authenticated;
