alter function public.reading_jobs_to_enqueue(integer, integer, integer)
  reset plan_cache_mode;
