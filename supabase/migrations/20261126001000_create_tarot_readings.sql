-- Finished readings. Written only by the job consumer (service side), never by the app: the
-- design document's insert policy would have let users create readings without paying.

create table public.tarot_readings (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  job_id uuid unique references public.jobs (id) on delete set null,

  question text not null check (char_length(btrim(question)) between 1 and 500),
  question_length integer generated always as (char_length(question)) stored,
  question_locale text not null default 'th' check (question_locale in ('th', 'en')),
  -- Thai has no text-search configuration (the design document's to_tsvector('thai', ...) index
  -- fails); search runs ILIKE over this normalized copy with a trigram index.
  question_normalized text generated always as (private.normalize_question(question)) stored,

  card_count integer not null check (card_count in (3, 5)),
  cards jsonb not null,

  question_analysis jsonb,
  tarot_reading jsonb not null,
  processing_time_ms integer check (processing_time_ms is null or processing_time_ms >= 0),
  prompt_version text,
  schema_version text,
  job_attempts integer not null default 0 check (job_attempts >= 0),

  metadata jsonb,

  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),

  constraint tarot_readings_cards_match_count
    check (jsonb_typeof(cards) = 'array' and jsonb_array_length(cards) = card_count)
);

create index tarot_readings_user_created_idx
  on public.tarot_readings (user_id, created_at desc, id desc);
create index tarot_readings_question_trgm_idx
  on public.tarot_readings using gin (question_normalized extensions.gin_trgm_ops);

create trigger tarot_readings_set_updated_at before update on public.tarot_readings
  for each row execute function private.set_updated_at();

alter table public.tarot_readings enable row level security;

revoke all on table public.tarot_readings from public, anon, authenticated;
grant select on table public.tarot_readings to authenticated;
grant select, insert, update, delete on table public.tarot_readings to service_role;

create policy tarot_readings_select_own on public.tarot_readings
  for select to authenticated
  using (user_id = (select auth.uid()));

-- The design document's user_can_access_reading compared user_id with itself (always true).
-- Parameters are prefixed so they cannot be confused with columns.
create function private.user_can_access_reading(p_reading_id uuid, p_user_id uuid)
returns boolean
language sql
stable
set search_path = ''
as $$
  select exists (
    select 1 from public.tarot_readings r
    where r.id = p_reading_id and r.user_id = p_user_id
  )
$$;

revoke all on function private.user_can_access_reading(uuid, uuid) from public, anon, authenticated;
grant execute on function private.user_can_access_reading(uuid, uuid) to service_role;
