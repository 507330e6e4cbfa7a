-- job_attempts gets its job's owner, so the app's read of its attempts is one index range.
--
-- The policy was an EXISTS over jobs checked row by row: the planner walked the attempts of
-- everyone (newest first) and probed jobs for each, so the read grew with the table. The owner
-- is copied from the job by a trigger on every insert (and whenever an attempt's job changes),
-- and follows the job if its owner ever changes, so "attempts of the user's own jobs" and
-- "attempts whose user_id is the user" are the same rows.

alter table public.job_attempts add column user_id uuid references public.users (id) on delete cascade;

update public.job_attempts a set user_id = j.user_id from public.jobs j where j.id = a.job_id;

alter table public.job_attempts alter column user_id set not null;

create index job_attempts_user_created_idx
  on public.job_attempts (user_id, created_at desc, id desc);

-- Owner's rights: the consumer inserts attempts as service_role, which may read jobs anyway;
-- the owner is always the job's, whatever the inserting statement says.
create function private.set_job_attempt_owner()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  select j.user_id into new.user_id from public.jobs j where j.id = new.job_id;
  return new;
end
$$;

create function private.follow_job_owner()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.job_attempts a set user_id = new.user_id where a.job_id = new.id;
  return null;
end
$$;

revoke all on function private.set_job_attempt_owner() from public, anon, authenticated;
revoke all on function private.follow_job_owner() from public, anon, authenticated;

create trigger job_attempts_set_owner
  before insert or update of job_id, user_id on public.job_attempts
  for each row execute function private.set_job_attempt_owner();

create trigger jobs_follow_owner
  after update of user_id on public.jobs
  for each row when (old.user_id is distinct from new.user_id)
  execute function private.follow_job_owner();

drop policy job_attempts_select_own on public.job_attempts;

create policy job_attempts_select_own on public.job_attempts
  for select to authenticated
  using (user_id = (select auth.uid()));
