drop policy job_attempts_select_own on public.job_attempts;

create policy job_attempts_select_own on public.job_attempts
  for select to authenticated
  using (exists (
    select 1 from public.jobs j
    where j.id = job_attempts.job_id and j.user_id = (select auth.uid())
  ));

drop trigger jobs_follow_owner on public.jobs;
drop trigger job_attempts_set_owner on public.job_attempts;
drop function private.follow_job_owner();
drop function private.set_job_attempt_owner();
drop index public.job_attempts_user_created_idx;
alter table public.job_attempts drop column user_id;
