-- Saved-card functions outside the webhook.
--
-- set_default_payment_method (authenticated): make one of the caller's active cards the
-- default; someone else's card or an unknown id is MV005 not_found.
-- deactivate_payment_method (service_role, after the payment-methods function detached the card
-- at Stripe): the card stops being usable at once, before the detached event arrives.

create function public.set_default_payment_method(payment_method_id uuid)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_user_id uuid := auth.uid();
  v_method public.user_payment_methods;
begin
  if v_user_id is null then
    raise exception using errcode = '42501', message = 'permission denied',
      detail = 'set_default_payment_method needs a signed-in user.';
  end if;
  perform pg_catalog.pg_advisory_xact_lock(
    pg_catalog.hashtextextended('payment-methods:' || v_user_id, 0));
  select * into v_method from public.user_payment_methods m
   where m.id = payment_method_id and m.user_id = v_user_id and m.is_active;
  if not found then
    raise exception using errcode = 'MV005', message = 'not_found',
      detail = 'You have no active saved card with this id.';
  end if;
  update public.user_payment_methods m set is_default = false
   where m.user_id = v_user_id and m.is_default and m.id <> v_method.id;
  update public.user_payment_methods m set is_default = true
   where m.id = v_method.id
  returning * into v_method;
  return pg_catalog.jsonb_build_object(
    'id', v_method.id, 'brand', v_method.brand, 'last4', v_method.last4,
    'exp_month', v_method.exp_month, 'exp_year', v_method.exp_year,
    'is_default', v_method.is_default);
end
$$;

create function public.deactivate_payment_method(p_user_id uuid, p_payment_method_id uuid)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_method public.user_payment_methods;
begin
  perform pg_catalog.pg_advisory_xact_lock(
    pg_catalog.hashtextextended('payment-methods:' || p_user_id, 0));
  update public.user_payment_methods m
     set is_active = false, is_default = false
   where m.id = p_payment_method_id and m.user_id = p_user_id
  returning * into v_method;
  if not found then
    raise exception using errcode = 'MV005', message = 'not_found',
      detail = 'You have no saved card with this id.';
  end if;
  perform private.promote_default_payment_method(p_user_id);
  return pg_catalog.jsonb_build_object('id', v_method.id, 'is_active', false);
end
$$;

revoke all on function public.set_default_payment_method(uuid) from public, anon, authenticated;
revoke all on function public.deactivate_payment_method(uuid, uuid) from public, anon, authenticated;
grant execute on function public.set_default_payment_method(uuid) to authenticated;
grant execute on function public.deactivate_payment_method(uuid, uuid) to service_role;
