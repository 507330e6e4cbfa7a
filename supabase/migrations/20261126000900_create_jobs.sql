-- Reading jobs. Postgres is the source of truth; the Redis stream only delivers job ids.

create table public.jobs (
  id uuid primary key default gen_random_uuid(),
  -- The owner, so RLS can show users their own jobs (the design document's jobs had none).
  user_id uuid not null references public.users (id) on delete cascade,
  job_type text not null default 'tarot_reading',

  schema_version text not null default '1',
  prompt_version text,
  dedupe_key text not null unique check (char_length(dedupe_key) between 1 and 512),

  status public.job_status not null default 'queued',
  payload jsonb not null,
  result jsonb,
  cost_stars integer not null default 0 check (cost_stars >= 0),

  -- Lease: the attempt number is the fencing token; a worker holds a job for
  -- visibility_timeout_secs from started_at.
  attempts integer not null default 0,
  max_attempts integer not null default 5,
  visibility_timeout_secs integer not null default 300,
  worker_id text,

  last_error text,
  last_error_at timestamptz,
  next_retry_at timestamptz,
  -- When the job last reached the stream; null means the sweep must (re-)enqueue it.
  enqueued_at timestamptz,

  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  started_at timestamptz,
  completed_at timestamptz,

  constraint jobs_attempts_range check (attempts >= 0 and attempts <= max_attempts),
  constraint jobs_max_attempts_positive check (max_attempts > 0),
  constraint jobs_visibility_timeout_positive check (visibility_timeout_secs > 0),
  constraint jobs_payload_object check (jsonb_typeof(payload) = 'object')
);

create index jobs_user_created_idx on public.jobs (user_id, created_at desc, id desc);
create index jobs_status_created_idx on public.jobs (status, created_at);
create index jobs_retry_due_idx on public.jobs (next_retry_at) where status = 'failed';
create index jobs_processing_started_idx on public.jobs (started_at) where status = 'processing';
create index jobs_user_open_idx on public.jobs (user_id) where status in ('queued', 'processing', 'failed');

create trigger jobs_set_updated_at before update on public.jobs
  for each row execute function private.set_updated_at();

alter table public.jobs enable row level security;

revoke all on table public.jobs from public, anon, authenticated;
grant select on table public.jobs to authenticated;
grant select, insert, update, delete on table public.jobs to service_role;

create policy jobs_select_own on public.jobs
  for select to authenticated
  using (user_id = (select auth.uid()));
