-- The purchase function URL's SQL side (service_role only; the handler has verified the user).
--
-- begin_purchase: the pending payment for (user, Idempotency-Key), priced from star_packages.
-- A replay with the same request returns the first row; another request under the same key is
-- refused with MV004. Concurrent first calls meet on the (user_id, idempotency_key) unique key.

-- With a saved card, begin_purchase checks the card before any payment row
-- exists, so a card the caller does not own (or has removed) is MV006 validation_error and
-- leaves nothing behind. The card is resolved once, when the payment is begun, and kept on the
-- row: a replay of the same request pays with the same card even if it was removed since.
--
-- payment_method (the request's `payment_method_id`) may be
--   * our user_payment_methods.id: one of the caller's active cards;
--   * a Stripe pm_ id of one of the caller's active cards;
--   * a Stripe pm_ id we have no row for (a test card, or one the app just created with
--     Stripe): passed on, and Stripe refuses it if it belongs to another customer.
-- Someone else's card, an inactive card or anything else is refused.

create function public.begin_purchase(
  p_user_id uuid,
  p_package text,
  p_idempotency_key text,
  p_request_hash text,
  p_payment_method text default null
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
      stars_purchased, stars_bonus, stripe_payment_method_id
    ) values (
      p_user_id, p_idempotency_key, p_request_hash, v_package.amount_satang, v_package.currency,
      v_package.code, v_package.stars, v_package.bonus_stars, v_stripe_method
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
    (select c.stripe_customer_id from public.stripe_customers c where c.user_id = p_user_id)
  );
end
$$;

-- The user's Stripe Customer, recorded once: a concurrent second recording keeps the first.
create function public.record_stripe_customer(p_user_id uuid, p_stripe_customer_id text)
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

-- Links the PaymentIntent to its payment; a declined confirmation marks a pending payment
-- failed (a later success, reported by the webhook, still wins).
create function public.record_payment_intent(
  p_payment_id uuid,
  p_payment_intent_id text,
  p_declined boolean default false,
  p_error_code text default null,
  p_error_message text default null
)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_payment public.payments%rowtype;
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
  update public.payments p
     set stripe_payment_intent_id = p_payment_intent_id,
         status = case when p_declined and p.status = 'pending' then 'failed' else p.status end,
         error_code = case when p_declined and p.status = 'pending' then left(p_error_code, 100)
                           else p.error_code end,
         error_message = case when p_declined and p.status = 'pending'
                              then left(p_error_message, 500) else p.error_message end
   where p.id = p_payment_id
  returning * into v_payment;
  return pg_catalog.to_jsonb(v_payment);
end
$$;

revoke all on function public.begin_purchase(uuid, text, text, text, text)
  from public, anon, authenticated;
revoke all on function public.record_stripe_customer(uuid, text) from public, anon, authenticated;
revoke all on function public.record_payment_intent(uuid, text, boolean, text, text)
  from public, anon, authenticated;
grant execute on function public.begin_purchase(uuid, text, text, text, text) to service_role;
grant execute on function public.record_stripe_customer(uuid, text) to service_role;
grant execute on function public.record_payment_intent(uuid, text, boolean, text, text)
  to service_role;
