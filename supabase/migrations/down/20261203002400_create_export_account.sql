drop function public.export_account();
