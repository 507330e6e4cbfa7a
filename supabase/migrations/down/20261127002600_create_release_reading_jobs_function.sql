drop function public.release_reading_jobs_enqueued(uuid[]);
