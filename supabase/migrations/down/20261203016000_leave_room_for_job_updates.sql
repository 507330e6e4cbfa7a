alter table public.jobs reset (fillfactor);
