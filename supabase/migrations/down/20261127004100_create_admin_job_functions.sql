drop function public.admin_refund_reading(uuid, text);
drop function public.admin_replay_job(uuid, integer);
