-- Erasing accounts is no longer offered; accounts already erased stay erased.
drop function public.finish_account_cleanup(uuid, text, text);
drop function public.account_cleanups_due(integer);
drop function public.erase_account(uuid, text, text);
