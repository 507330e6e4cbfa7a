-- The consumer's sweep: pending invites past expires_at become expired and can never pay.
-- Returns how many it expired. Service_role only (the job consumer); the row locks it takes
-- make it wait for a qualification in flight, after which the invite is no longer pending and
-- is skipped.

create function public.expire_pending_invites()
returns integer
language sql
volatile
set search_path = ''
as $$
  with expired as (
    update public.user_invites i
       set status = 'expired'
     where i.status = 'pending'
       and i.expires_at <= now()
    returning 1
  )
  select count(*)::integer from expired
$$;

revoke all on function public.expire_pending_invites() from public, anon, authenticated;
grant execute on function public.expire_pending_invites() to service_role;
