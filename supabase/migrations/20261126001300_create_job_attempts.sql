-- One row per processing attempt of a job.

create table public.job_attempts (
  id uuid primary key default gen_random_uuid(),
  job_id uuid not null references public.jobs (id) on delete cascade,

  attempt_number integer not null check (attempt_number > 0),
  worker_id text,

  started_at timestamptz not null default now(),
  finished_at timestamptz,
  processing_time_ms integer generated always as (
    (extract(epoch from (finished_at - started_at)) * 1000)::integer
  ) stored,

  success boolean,
  error text,
  error_code text,

  created_at timestamptz not null default now(),

  constraint job_attempts_job_attempt_key unique (job_id, attempt_number),
  constraint job_attempts_finished_after_start check (finished_at is null or finished_at >= started_at)
);

create index job_attempts_worker_idx on public.job_attempts (worker_id) where worker_id is not null;
create index job_attempts_created_idx on public.job_attempts (created_at desc);

alter table public.job_attempts enable row level security;

revoke all on table public.job_attempts from public, anon, authenticated;
grant select on table public.job_attempts to authenticated;
grant select, insert, update, delete on table public.job_attempts to service_role;

-- Attempts of the user's own jobs (the jobs policy applies inside the subquery too).
create policy job_attempts_select_own on public.job_attempts
  for select to authenticated
  using (exists (
    select 1 from public.jobs j
    where j.id = job_attempts.job_id and j.user_id = (select auth.uid())
  ));
