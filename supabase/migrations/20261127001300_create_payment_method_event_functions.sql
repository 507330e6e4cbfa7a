-- Saved cards kept in step with payment_method.attached / updated / detached.
--
-- The card's owner is the user of its Stripe Customer (the detached event carries the customer
-- in previous_attributes only). Detachment is final at Stripe, so it is final here: a detached
-- card is never reactivated by an attach or update event that arrives late. A user's first
-- active card becomes the default; when the default goes, the newest remaining card takes over.
-- Changes of one user's cards are serialised with a transaction advisory lock.

create function private.promote_default_payment_method(p_user_id uuid)
returns void
language sql
volatile
set search_path = ''
as $$
  update public.user_payment_methods m
     set is_default = true
   where m.id = (
           select c.id from public.user_payment_methods c
            where c.user_id = p_user_id and c.is_active
            order by c.created_at desc, c.id desc
            limit 1)
     and not exists (
           select 1 from public.user_payment_methods d
            where d.user_id = p_user_id and d.is_default)
$$;

create function private.on_payment_method_event(
  p_event_type text,
  p_method jsonb,
  p_previous jsonb
)
returns text
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_customer text := coalesce(p_method ->> 'customer', p_previous ->> 'customer');
  v_user_id uuid;
  v_detached boolean := p_event_type = 'payment_method.detached';
  v_card jsonb := coalesce(p_method -> 'card', '{}'::jsonb);
  v_last4 text := v_card ->> 'last4';
  v_exp_month integer := (v_card ->> 'exp_month')::integer;
  v_exp_year integer := (v_card ->> 'exp_year')::integer;
begin
  if p_method ->> 'id' is null or v_customer is null then
    return 'no_customer';
  end if;
  select c.user_id into v_user_id from public.stripe_customers c
   where c.stripe_customer_id = v_customer;
  if v_user_id is null then
    return 'unknown_customer';
  end if;
  perform pg_catalog.pg_advisory_xact_lock(
    pg_catalog.hashtextextended('payment-methods:' || v_user_id, 0));

  if v_last4 !~ '^[0-9]{4}$' then
    v_last4 := null;
  end if;
  if v_exp_month not between 1 and 12 then
    v_exp_month := null;
  end if;
  if v_exp_year not between 1000 and 9999 then
    v_exp_year := null;
  end if;

  insert into public.user_payment_methods as m (
    user_id, stripe_payment_method_id, stripe_customer_id, type, brand, last4, exp_month,
    exp_year, is_default, is_active
  ) values (
    v_user_id, p_method ->> 'id', v_customer, coalesce(p_method ->> 'type', 'card'),
    v_card ->> 'brand', v_last4, v_exp_month, v_exp_year, false, not v_detached
  )
  on conflict (stripe_payment_method_id) do update
     set brand = coalesce(excluded.brand, m.brand),
         last4 = coalesce(excluded.last4, m.last4),
         exp_month = coalesce(excluded.exp_month, m.exp_month),
         exp_year = coalesce(excluded.exp_year, m.exp_year),
         is_active = m.is_active and not v_detached,
         is_default = m.is_default and not v_detached
   where m.user_id = v_user_id;

  perform private.promote_default_payment_method(v_user_id);
  return case when v_detached then 'card_detached' else 'card_saved' end;
end
$$;

revoke all on function private.promote_default_payment_method(uuid) from public, anon, authenticated;
revoke all on function private.on_payment_method_event(text, jsonb, jsonb)
  from public, anon, authenticated;
grant execute on function private.promote_default_payment_method(uuid) to service_role;
grant execute on function private.on_payment_method_event(text, jsonb, jsonb) to service_role;
