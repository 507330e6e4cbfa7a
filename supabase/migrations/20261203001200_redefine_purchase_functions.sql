-- Purchases as Thai customers make them (redefines begin_purchase and record_payment_intent of
-- 20261127001100_create_purchase_functions).
--
-- begin_purchase takes the payment method type: card (the default: the PaymentSheet, or a saved
-- card) or promptpay, which takes no saved card and needs the user's email (returned with the
-- row, for Stripe's billing details). The type is part of the request hash, so a replay with
-- another type under the same key is MV004.
--
-- record_payment_intent takes the PaymentIntent's status as Stripe answered it: a card asking
-- for 3-D Secure or a PromptPay QR (requires_action) and a payment the bank is still confirming
-- (processing) move a pending payment forward; nothing here settles a payment (stars arrive
-- only with the webhook). Unsettled statuses only move up: pending < requires_action <
-- processing < failed < canceled; a success (webhook) overrides them all.

drop function public.begin_purchase(uuid, text, text, text, text);
drop function public.record_payment_intent(uuid, text, boolean, text, text);

create function public.begin_purchase(
  p_user_id uuid,
  p_package text,
  p_idempotency_key text,
  p_request_hash text,
  p_payment_method text default null,
  p_payment_method_type text default 'card'
)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_package public.star_packages%rowtype;
  v_payment public.payments%rowtype;
  v_method public.user_payment_methods%rowtype;
  v_stripe_method text;
  v_replayed boolean := false;
begin
  if p_idempotency_key is null or char_length(p_idempotency_key) not between 1 and 255 then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'The idempotency key must be 1 to 255 characters long.';
  end if;

  -- A replay returns the first row without checking the card again.
  select * into v_payment from public.payments p
   where p.user_id = p_user_id and p.idempotency_key = p_idempotency_key;
  if not found then
    select * into v_package from public.star_packages s where s.code = p_package and s.active;
    if not found then
      raise exception using errcode = 'MV006', message = 'validation_error',
        detail = format('There is no star package called %s.', coalesce(p_package, 'null'));
    end if;

    if p_payment_method_type is null or p_payment_method_type not in ('card', 'promptpay') then
      raise exception using errcode = 'MV006', message = 'validation_error',
        detail = 'The payment method type must be card or promptpay.';
    end if;
    if p_payment_method_type = 'promptpay' then
      if p_payment_method is not null then
        raise exception using errcode = 'MV006', message = 'validation_error',
          detail = 'A saved card cannot pay with PromptPay.';
      end if;
      -- Stripe needs the payer's email to confirm a PromptPay payment.
      if not exists (select 1 from public.users u where u.id = p_user_id and u.email is not null) then
        raise exception using errcode = 'MV006', message = 'validation_error',
          detail = 'PromptPay needs an email address on your account.';
      end if;
    end if;

    if p_payment_method is not null then
      if p_payment_method ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' then
        select * into v_method from public.user_payment_methods m
         where m.id = p_payment_method::uuid;
      else
        select * into v_method from public.user_payment_methods m
         where m.stripe_payment_method_id = p_payment_method;
      end if;
      if v_method.id is not null then
        if v_method.user_id is distinct from p_user_id or not v_method.is_active then
          raise exception using errcode = 'MV006', message = 'validation_error',
            detail = 'You have no saved card with this id.';
        end if;
        v_stripe_method := v_method.stripe_payment_method_id;
      elsif p_payment_method ~ '^pm_[A-Za-z0-9_]{1,250}$' then
        v_stripe_method := p_payment_method;
      else
        raise exception using errcode = 'MV006', message = 'validation_error',
          detail = 'You have no saved card with this id.';
      end if;
    end if;

    insert into public.payments (
      user_id, idempotency_key, request_hash, amount, currency, package_type,
      stars_purchased, stars_bonus, stripe_payment_method_id, payment_method_type
    ) values (
      p_user_id, p_idempotency_key, p_request_hash, v_package.amount_satang, v_package.currency,
      v_package.code, v_package.stars, v_package.bonus_stars, v_stripe_method,
      p_payment_method_type
    )
    on conflict (user_id, idempotency_key) do nothing
    returning * into v_payment;

    if not found then
      -- A concurrent first call with the same key won the insert.
      select * into v_payment from public.payments p
       where p.user_id = p_user_id and p.idempotency_key = p_idempotency_key;
      v_replayed := true;
    end if;
  else
    v_replayed := true;
  end if;

  if v_replayed and v_payment.request_hash is distinct from p_request_hash then
    raise exception using errcode = 'MV004', message = 'idempotency_key_reused',
      detail = 'This Idempotency-Key was used for a different purchase.';
  end if;

  return pg_catalog.to_jsonb(v_payment) || pg_catalog.jsonb_build_object(
    'replayed', v_replayed,
    'stripe_customer_id',
    (select c.stripe_customer_id from public.stripe_customers c where c.user_id = p_user_id),
    'email', (select u.email from public.users u where u.id = p_user_id)
  );
end
$$;


create function private.unsettled_rank(p_status public.payment_status)
returns integer
language sql
immutable
set search_path = ''
as $$
  select case p_status::text
    when 'pending' then 0 when 'requires_action' then 1 when 'processing' then 2
    when 'failed' then 3 when 'canceled' then 4 else null end
$$;

-- Links the PaymentIntent to its payment and records how Stripe answered its confirmation.
create function public.record_payment_intent(
  p_payment_id uuid,
  p_payment_intent_id text,
  p_declined boolean default false,
  p_error_code text default null,
  p_error_message text default null,
  p_intent_status text default null
)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_payment public.payments%rowtype;
  v_status public.payment_status;
begin
  select * into v_payment from public.payments p where p.id = p_payment_id for update;
  if not found then
    raise exception using errcode = 'MV005', message = 'not_found',
      detail = format('Payment %s does not exist.', p_payment_id);
  end if;
  if v_payment.stripe_payment_intent_id is not null
     and v_payment.stripe_payment_intent_id <> p_payment_intent_id then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'The payment already belongs to another PaymentIntent.';
  end if;
  v_status := case
    when p_declined then 'failed'::public.payment_status
    when p_intent_status in ('requires_action', 'processing')
      then p_intent_status::public.payment_status
    else null end;
  -- Only an unsettled payment moves, and only forward.
  if v_status is not null and (private.unsettled_rank(v_payment.status) is null
      or private.unsettled_rank(v_status) <= private.unsettled_rank(v_payment.status)) then
    v_status := null;
  end if;
  update public.payments p
     set stripe_payment_intent_id = p_payment_intent_id,
         status = coalesce(v_status, p.status),
         error_code = case when v_status = 'failed' then left(p_error_code, 100)
                           else p.error_code end,
         error_message = case when v_status = 'failed' then left(p_error_message, 500)
                              else p.error_message end
   where p.id = p_payment_id
  returning * into v_payment;
  return pg_catalog.to_jsonb(v_payment);
end
$$;

revoke all on function public.begin_purchase(uuid, text, text, text, text, text)
  from public, anon, authenticated;
revoke all on function private.unsettled_rank(public.payment_status)
  from public, anon, authenticated;
revoke all on function public.record_payment_intent(uuid, text, boolean, text, text, text)
  from public, anon, authenticated;
grant execute on function public.begin_purchase(uuid, text, text, text, text, text) to service_role;
grant execute on function private.unsettled_rank(public.payment_status) to service_role;
grant execute on function public.record_payment_intent(uuid, text, boolean, text, text, text)
  to service_role;
