drop function public.queue_health();
