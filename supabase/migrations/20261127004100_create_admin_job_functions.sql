-- Operator actions on reading jobs, run by `python -m ops.admin` (service_role only; never
-- exposed as an endpoint).
--
-- admin_replay_job: a dead-lettered job goes back to the queue with p_extra_attempts more
-- attempts. The attempt counter keeps growing (it is the fencing token and job_attempts is
-- unique per attempt), so max_attempts is raised instead of resetting attempts. The stars were
-- refunded when the job was dead-lettered; the replay does not charge again (an operator
-- replays to make good on our failure), and a second dead letter refunds nothing twice because
-- the refund's dedupe key is per job. The sweep puts it on the stream (enqueued_at is null).
--
-- admin_refund_reading: gives a finished job's stars back, once (dedupe key
-- reading-refund:<job>, shared with the dead-letter refund). A job still in flight is refused:
-- it could yet be dead-lettered and refunded by the consumer.

create function public.admin_replay_job(p_job_id uuid, p_extra_attempts integer default 3)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_job public.jobs;
begin
  if p_extra_attempts is null or p_extra_attempts < 1 or p_extra_attempts > 20 then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'extra attempts must be between 1 and 20.';
  end if;
  select * into v_job from public.jobs j where j.id = p_job_id for update;
  if not found then
    raise exception using errcode = 'MV005', message = 'not_found',
      detail = 'No job has this id.';
  end if;
  if v_job.status <> 'dlq' then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = pg_catalog.format('Only dead-lettered jobs can be replayed; this one is %s.',
                                 v_job.status);
  end if;
  update public.jobs j
     set status = 'queued', max_attempts = j.attempts + p_extra_attempts,
         next_retry_at = null, enqueued_at = null, worker_id = null, started_at = null,
         completed_at = null
   where j.id = p_job_id
  returning j.* into v_job;
  return pg_catalog.jsonb_build_object(
    'job_id', v_job.id, 'status', v_job.status, 'attempts', v_job.attempts,
    'max_attempts', v_job.max_attempts
  );
end
$$;

create function public.admin_refund_reading(p_job_id uuid, p_reason text default 'operator')
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_job public.jobs;
  v_existing boolean;
begin
  select * into v_job from public.jobs j where j.id = p_job_id for update;
  if not found then
    raise exception using errcode = 'MV005', message = 'not_found',
      detail = 'No job has this id.';
  end if;
  if v_job.status not in ('succeeded', 'dlq') then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = pg_catalog.format('The job is still %s; refund it once it has finished.',
                                 v_job.status);
  end if;
  select exists (
    select 1 from public.wallet_transactions t
     where t.dedupe_key = 'reading-refund:' || v_job.id::text
  ) into v_existing;
  if not v_existing then
    perform private.refund_reading_job(
      v_job, coalesce(nullif(pg_catalog.btrim(p_reason), ''), 'operator'));
  end if;
  return pg_catalog.jsonb_build_object(
    'job_id', v_job.id, 'user_id', v_job.user_id,
    'refunded_stars', case when v_existing then 0 else v_job.cost_stars end,
    'already_refunded', v_existing
  );
end
$$;

revoke all on function public.admin_replay_job(uuid, integer) from public, anon, authenticated;
revoke all on function public.admin_refund_reading(uuid, text) from public, anon, authenticated;
grant execute on function public.admin_replay_job(uuid, integer) to service_role;
grant execute on function public.admin_refund_reading(uuid, text) to service_role;
