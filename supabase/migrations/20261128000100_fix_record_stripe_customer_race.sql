-- Concurrent first purchases of one user record the same Customer (Stripe returns it for the
-- shared idempotency key). `on conflict (user_id)` left the other unique index,
-- stripe_customer_id, to raise 23505 in the loser; and a single statement could not see the
-- winner's row committed after its snapshot. Any conflict is now a no-op, and the recorded
-- Customer is read by a second statement, with a fresh snapshot.

create or replace function public.record_stripe_customer(p_user_id uuid, p_stripe_customer_id text)
returns text
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_recorded text;
begin
  insert into public.stripe_customers (user_id, stripe_customer_id)
  values (p_user_id, p_stripe_customer_id)
  on conflict do nothing
  returning stripe_customer_id into v_recorded;
  if v_recorded is null then
    select c.stripe_customer_id into v_recorded from public.stripe_customers c
     where c.user_id = p_user_id;
  end if;
  return v_recorded;
end
$$;
