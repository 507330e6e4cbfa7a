-- Postgres holds a reading job's lease; the Redis stream is only a doorbell ("job X may have
-- work"), and reading an entry takes nothing. Python no longer tells SQL whether it rang: the
-- create-reading path rings best effort after its commit without marking the job, and the
-- consumer does not give back the marks of a push that failed. SQL alone writes a job's state,
-- and the sweep (reading_jobs_to_enqueue, unchanged) alone decides which jobs are rung again:
-- queued jobs never rung past the grace, jobs rung but not claimed within p_stale_secs (the
-- consumer passes its lease), expired leases and due retries. The two functions that carried the
-- "enqueued" bit across the boundary have no caller left.

drop function public.mark_reading_jobs_enqueued(uuid[]);
drop function public.release_reading_jobs_enqueued(uuid[]);

comment on column public.jobs.enqueued_at is
  'When the sweep last rang the job''s doorbell on the stream; null: never rung by the sweep '
  '(the create-reading path rings without marking). Written only by SQL.';
