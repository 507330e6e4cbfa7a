-- The sweep (reading_jobs_to_enqueue) is planned for its arguments on every call. After five
-- calls in one session, PostgreSQL may switch a function's statements to a generic plan, made
-- without the values of p_limit, p_grace_secs and p_stale_secs; for the sweep that plan read
-- more candidate rows the larger the table (data_scale: 500 rows for 100 at 200,000 users and
-- 1,300 at 1,000,000, against 300 at both with the arguments known). A custom plan costs well
-- under a millisecond of planning, once per consumer run.
alter function public.reading_jobs_to_enqueue(integer, integer, integer)
  set plan_cache_mode = force_custom_plan;
