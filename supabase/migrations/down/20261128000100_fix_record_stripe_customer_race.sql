create or replace function public.record_stripe_customer(p_user_id uuid, p_stripe_customer_id text)
returns text
language sql
volatile
set search_path = ''
as $$
  with inserted as (
    insert into public.stripe_customers (user_id, stripe_customer_id)
    values (p_user_id, p_stripe_customer_id)
    on conflict (user_id) do nothing
    returning stripe_customer_id
  )
  select stripe_customer_id from inserted
  union all
  select c.stripe_customer_id from public.stripe_customers c
   where c.user_id = p_user_id and not exists (select 1 from inserted)
$$;
