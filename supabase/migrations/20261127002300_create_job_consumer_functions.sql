-- The job consumer's side of the reading queue. Postgres is the source of truth; the Redis
-- stream only delivers job ids, possibly more than once. Every function takes a batch, so a
-- consumer needs one round trip to claim a batch and one to finish it. Granted to service_role.
--
-- A claim is a lease: status processing, attempts + 1, worker_id, started_at, for
-- visibility_timeout_secs. The attempt number is the fencing token: a finish must name the
-- attempt it ran, so a worker whose lease expired and whose job was claimed again cannot
-- complete, fail or refund it. Every attempt has a job_attempts row.

-- Gives the stars of a job back, once (the dedupe key makes a second call a no-op).
create function private.refund_reading_job(p_job public.jobs, p_reason text)
returns void
language plpgsql
volatile
set search_path = ''
as $$
begin
  if p_job.cost_stars > 0 then
    perform private.apply_wallet_change(
      p_job.user_id, 'STAR', p_job.cost_stars, 'refund', 'reading-refund:' || p_job.id::text,
      pg_catalog.jsonb_build_object('reason', p_reason), p_related_job_id => p_job.id
    );
  end if;
end
$$;

-- Moves a job to dlq and refunds it; returns what the dead-letter stream entry says.
create function private.dead_letter_reading_job(p_job_id uuid, p_error text, p_error_code text)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_job public.jobs;
begin
  update public.jobs j
     set status = 'dlq', completed_at = pg_catalog.now(), next_retry_at = null,
         last_error = p_error, last_error_at = pg_catalog.now(), enqueued_at = null
   where j.id = p_job_id
  returning j.* into v_job;
  perform private.refund_reading_job(v_job, 'dead_lettered');
  return pg_catalog.jsonb_build_object(
    'job_id', v_job.id, 'outcome', 'dead_lettered', 'user_id', v_job.user_id,
    'attempts', v_job.attempts, 'error', p_error, 'error_code', p_error_code
  );
end
$$;

-- Claims every claimable job of p_job_ids (duplicates ignored) and returns one entry per id:
-- {job_id, outcome} with outcome
--   claimed        (plus attempt, user_id, payload): this worker holds the lease now;
--   done           the job already succeeded or is dead-lettered;
--   busy           another worker holds a live lease (or is claiming it right now);
--   not_due        a failed job whose retry time has not come;
--   missing        no such job;
--   dead_lettered  an expired lease on the last attempt: the job is moved to dlq and refunded.
-- A claimable job is queued, failed and due, or processing with an expired lease (its worker
-- is presumed dead: that attempt is closed as lease_expired and counts).
create function public.claim_reading_jobs(
  p_job_ids uuid[],
  p_worker_id text,
  p_visibility_timeout_secs integer default null
)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_id uuid;
  v_job public.jobs;
  v_out jsonb := '[]'::jsonb;
begin
  if p_worker_id is null or char_length(p_worker_id) not between 1 and 200 then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'A claim needs a worker id.';
  end if;
  if p_visibility_timeout_secs is not null and p_visibility_timeout_secs < 1 then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'The visibility timeout must be positive.';
  end if;

  for v_id in
    select i.id from pg_catalog.unnest(p_job_ids) with ordinality as i (id, n)
     group by i.id order by pg_catalog.min(i.n)
  loop
    select j.* into v_job from public.jobs j where j.id = v_id for no key update skip locked;
    if not found then
      v_out := v_out || pg_catalog.jsonb_build_object('job_id', v_id, 'outcome',
        case when exists (select 1 from public.jobs j where j.id = v_id)
             then 'busy' else 'missing' end);
      continue;
    end if;

    if v_job.status in ('succeeded', 'dlq') then
      v_out := v_out || pg_catalog.jsonb_build_object('job_id', v_id, 'outcome', 'done');
      continue;
    end if;
    if v_job.status = 'failed' and v_job.next_retry_at > pg_catalog.now() then
      v_out := v_out || pg_catalog.jsonb_build_object('job_id', v_id, 'outcome', 'not_due');
      continue;
    end if;
    if v_job.status = 'processing' then
      if v_job.started_at + pg_catalog.make_interval(secs => v_job.visibility_timeout_secs)
         > pg_catalog.now() then
        v_out := v_out || pg_catalog.jsonb_build_object('job_id', v_id, 'outcome', 'busy');
        continue;
      end if;
      update public.job_attempts a
         set finished_at = greatest(pg_catalog.now(), a.started_at), success = false,
             error = 'The worker did not finish within its lease.', error_code = 'lease_expired'
       where a.job_id = v_id and a.attempt_number = v_job.attempts and a.finished_at is null;
      if v_job.attempts >= v_job.max_attempts then
        v_out := v_out || private.dead_letter_reading_job(
          v_id, 'The last attempt did not finish within its lease.', 'lease_expired');
        continue;
      end if;
    end if;

    update public.jobs j
       set status = 'processing', attempts = j.attempts + 1, worker_id = p_worker_id,
           started_at = pg_catalog.now(), next_retry_at = null, enqueued_at = null,
           visibility_timeout_secs = coalesce(p_visibility_timeout_secs, j.visibility_timeout_secs)
     where j.id = v_id
    returning j.* into v_job;
    insert into public.job_attempts (job_id, attempt_number, worker_id, started_at)
    values (v_id, v_job.attempts, p_worker_id, pg_catalog.now());
    v_out := v_out || pg_catalog.jsonb_build_object(
      'job_id', v_id, 'outcome', 'claimed', 'attempt', v_job.attempts,
      'max_attempts', v_job.max_attempts, 'user_id', v_job.user_id, 'payload', v_job.payload
    );
  end loop;
  return v_out;
end
$$;

-- Records the end of an attempt: {job_id, attempt, kind} plus
--   kind reading: question_analysis, tarot_reading, processing_time_ms, prompt_version,
--                 schema_version → the reading row and the job's success, one transaction;
--   kind refusal: refusal ({category, message}) → the job succeeds without a reading and the
--                 stars are refunded;
--   kind error:   error, error_code, retryable → failed with next_retry_at (exponential
--                 backoff with jitter), or dlq with a refund on the last attempt or when the
--                 error is not retryable.
-- Returns one entry per result: {job_id, outcome} with outcome succeeded, refused, retry
-- (plus next_retry_at), dead_lettered (plus the dead-letter fields) or stale (the attempt no
-- longer holds the job: nothing was changed).
create function public.finish_reading_jobs(
  p_results jsonb,
  p_backoff_base_secs double precision default 10,
  p_backoff_max_secs double precision default 3600
)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_result jsonb;
  v_job public.jobs;
  v_kind text;
  v_attempt integer;
  v_reading_id uuid;
  v_error text;
  v_error_code text;
  v_retryable boolean;
  v_delay double precision;
  v_out jsonb := '[]'::jsonb;
begin
  if p_results is null or pg_catalog.jsonb_typeof(p_results) <> 'array' then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'The results must be a JSON array.';
  end if;

  for v_result in select r.value from pg_catalog.jsonb_array_elements(p_results) as r (value)
  loop
    v_kind := v_result ->> 'kind';
    v_attempt := (v_result ->> 'attempt')::integer;
    select j.* into v_job from public.jobs j
     where j.id = (v_result ->> 'job_id')::uuid
       for no key update;
    if not found or v_job.status <> 'processing'
       or v_job.attempts is distinct from v_attempt then
      v_out := v_out || pg_catalog.jsonb_build_object(
        'job_id', v_result ->> 'job_id', 'outcome', 'stale');
      continue;
    end if;

    v_error := null;
    if v_kind = 'reading' then
      begin
        insert into public.tarot_readings (
          user_id, job_id, question, question_locale, card_count, cards, question_analysis,
          tarot_reading, processing_time_ms, prompt_version, schema_version, job_attempts
        ) values (
          v_job.user_id, v_job.id, v_job.payload ->> 'question', v_job.payload ->> 'locale',
          (v_job.payload ->> 'card_count')::integer, v_job.payload -> 'cards',
          v_result -> 'question_analysis', v_result -> 'tarot_reading',
          (v_result ->> 'processing_time_ms')::integer, v_result ->> 'prompt_version',
          v_result ->> 'schema_version', v_attempt
        )
        returning id into v_reading_id;
      exception when others then
        -- A reading the table refuses is a failed attempt, not a failed batch.
        v_error := 'The reading could not be stored: ' || sqlerrm;
        v_error_code := 'invalid_reading';
        v_retryable := true;
      end;
      if v_error is null then
        update public.jobs j
           set status = 'succeeded', completed_at = pg_catalog.now(), worker_id = null,
               prompt_version = v_result ->> 'prompt_version',
               schema_version = coalesce(v_result ->> 'schema_version', j.schema_version),
               result = pg_catalog.jsonb_build_object('reading_id', v_reading_id)
         where j.id = v_job.id;
        update public.job_attempts a
           set finished_at = pg_catalog.clock_timestamp(), success = true
         where a.job_id = v_job.id and a.attempt_number = v_attempt;
        v_out := v_out || pg_catalog.jsonb_build_object(
          'job_id', v_job.id, 'outcome', 'succeeded', 'reading_id', v_reading_id);
        continue;
      end if;
    elsif v_kind = 'refusal' then
      update public.jobs j
         set status = 'succeeded', completed_at = pg_catalog.now(), worker_id = null,
             prompt_version = v_result ->> 'prompt_version',
             schema_version = coalesce(v_result ->> 'schema_version', j.schema_version),
             result = pg_catalog.jsonb_build_object('refusal', v_result -> 'refusal')
       where j.id = v_job.id;
      update public.job_attempts a
         set finished_at = pg_catalog.clock_timestamp(), success = true,
             error_code = 'refused'
       where a.job_id = v_job.id and a.attempt_number = v_attempt;
      perform private.refund_reading_job(v_job, 'refused');
      v_out := v_out || pg_catalog.jsonb_build_object('job_id', v_job.id, 'outcome', 'refused');
      continue;
    elsif v_kind = 'error' then
      v_error := left(coalesce(v_result ->> 'error', 'The attempt failed.'), 2000);
      v_error_code := left(coalesce(v_result ->> 'error_code', 'error'), 100);
      v_retryable := coalesce((v_result ->> 'retryable')::boolean, true);
    else
      raise exception using errcode = 'MV006', message = 'validation_error',
        detail = pg_catalog.format('Unknown result kind %L.', v_kind);
    end if;

    update public.job_attempts a
       set finished_at = pg_catalog.clock_timestamp(), success = false,
           error = v_error, error_code = v_error_code
     where a.job_id = v_job.id and a.attempt_number = v_attempt;

    if not v_retryable or v_job.attempts >= v_job.max_attempts then
      v_out := v_out || private.dead_letter_reading_job(v_job.id, v_error, v_error_code);
      continue;
    end if;

    -- Exponential backoff with "equal jitter": half the step fixed, half random, so each
    -- wait is at least as long as the longest possible previous one (until the cap).
    v_delay := least(p_backoff_max_secs,
                     p_backoff_base_secs * pg_catalog.power(2, v_job.attempts - 1));
    v_delay := v_delay / 2 + pg_catalog.random() * v_delay / 2;
    update public.jobs j
       set status = 'failed', worker_id = null, last_error = v_error,
           last_error_at = pg_catalog.now(), enqueued_at = null,
           next_retry_at = pg_catalog.now() + pg_catalog.make_interval(secs => v_delay)
     where j.id = v_job.id
    returning j.* into v_job;
    v_out := v_out || pg_catalog.jsonb_build_object(
      'job_id', v_job.id, 'outcome', 'retry', 'next_retry_at', v_job.next_retry_at);
  end loop;
  return v_out;
end
$$;

-- The sweep: jobs that should be in the stream and may not be, marked as enqueued now and
-- returned (at most p_limit) for the caller to add to the stream:
--   queued jobs older than p_grace_secs that never reached the stream (Redis was down when
--   they were created) or reached it more than p_stale_secs ago (the entry was lost);
--   failed jobs whose retry is due; processing jobs whose lease expired.
-- A job re-enqueued within p_stale_secs is skipped, so a slow drain is not flooded with copies.
create function public.reading_jobs_to_enqueue(
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

-- Called after a job reached the stream, so the sweep leaves it alone.
create function public.mark_reading_jobs_enqueued(p_job_ids uuid[])
returns integer
language sql
volatile
set search_path = ''
as $$
  with marked as (
    update public.jobs j set enqueued_at = pg_catalog.now()
     where j.id = any (p_job_ids) and j.status = 'queued' and j.enqueued_at is null
    returning 1
  )
  select pg_catalog.count(*)::integer from marked
$$;

revoke all on function private.refund_reading_job(public.jobs, text)
  from public, anon, authenticated;
revoke all on function private.dead_letter_reading_job(uuid, text, text)
  from public, anon, authenticated;
revoke all on function public.claim_reading_jobs(uuid[], text, integer)
  from public, anon, authenticated;
revoke all on function public.finish_reading_jobs(jsonb, double precision, double precision)
  from public, anon, authenticated;
revoke all on function public.reading_jobs_to_enqueue(integer, integer, integer)
  from public, anon, authenticated;
revoke all on function public.mark_reading_jobs_enqueued(uuid[])
  from public, anon, authenticated;

grant execute on function private.refund_reading_job(public.jobs, text) to service_role;
grant execute on function private.dead_letter_reading_job(uuid, text, text) to service_role;
grant execute on function public.claim_reading_jobs(uuid[], text, integer) to service_role;
grant execute on function public.finish_reading_jobs(jsonb, double precision, double precision)
  to service_role;
grant execute on function public.reading_jobs_to_enqueue(integer, integer, integer)
  to service_role;
grant execute on function public.mark_reading_jobs_enqueued(uuid[]) to service_role;
