-- Payment effects of Stripe events, applied by public.apply_stripe_event in its transaction.
--
-- The state machine is monotonic and order-independent. A payment is settled (stars credited
-- once, dedupe 'purchase:<payment>') by payment_intent.succeeded, or implicitly by a refund or a
-- lost dispute, which only exist for a charge that succeeded: so a refund arriving before the
-- success still ends refunded with no net stars. failed/canceled never override a settled
-- payment. Refunds and lost disputes only ever raise cumulative amounts on the payment row; the
-- stars clawed back are recomputed from them (floor of stars_total x reversed / amount), and only
-- the difference to what was already clawed back is debited, clamped at zero, any shortfall kept
-- on the ledger row's metadata and on the payment.

-- The payment an event is about, locked: by PaymentIntent, then charge, then our metadata.
create function private.lock_payment(
  p_payment_intent_id text,
  p_charge_id text,
  p_metadata jsonb
)
returns public.payments
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_payment public.payments;
  v_payment_id uuid;
begin
  if p_payment_intent_id is not null then
    select * into v_payment from public.payments p
     where p.stripe_payment_intent_id = p_payment_intent_id for update;
    if found then
      return v_payment;
    end if;
  end if;
  if p_charge_id is not null then
    select * into v_payment from public.payments p
     where p.stripe_charge_id = p_charge_id for update;
    if found then
      return v_payment;
    end if;
  end if;
  -- The webhook may overtake the purchase function's recording of the PaymentIntent id.
  if jsonb_typeof(p_metadata -> 'payment_id') = 'string'
     and (p_metadata ->> 'payment_id') ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' then
    v_payment_id := (p_metadata ->> 'payment_id')::uuid;
    select * into v_payment from public.payments p
     where p.id = v_payment_id
       and (p.stripe_payment_intent_id is null
            or p.stripe_payment_intent_id = p_payment_intent_id)
       for update;
  end if;
  return v_payment;
end
$$;

create function private.payment_status_of(p_payment public.payments)
returns public.payment_status
language sql
immutable
set search_path = ''
as $$
  select case
    when p_payment.status in ('pending', 'failed', 'canceled') then p_payment.status
    when p_payment.amount_disputed > 0 then 'disputed'::public.payment_status
    when p_payment.amount_refunded >= p_payment.amount then 'refunded'::public.payment_status
    when p_payment.amount_refunded > 0 then 'partially_refunded'::public.payment_status
    else 'succeeded'::public.payment_status
  end
$$;

-- Settle once: status succeeded, stars credited, the invitee's invite qualified.
create function private.settle_payment(
  p_payment public.payments,
  p_payment_intent_id text,
  p_charge_id text
)
returns public.payments
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_payment public.payments;
  v_settling boolean := p_payment.status in ('pending', 'failed', 'canceled');
begin
  update public.payments p
     set stripe_payment_intent_id = coalesce(p.stripe_payment_intent_id, p_payment_intent_id),
         stripe_charge_id = coalesce(p.stripe_charge_id, p_charge_id),
         status = case when v_settling then 'succeeded' else p.status end,
         error_code = case when v_settling then null else p.error_code end,
         error_message = case when v_settling then null else p.error_message end
   where p.id = p_payment.id
  returning * into v_payment;
  if v_settling then
    perform private.apply_wallet_change(
      p_user_id => v_payment.user_id,
      p_currency => 'STAR',
      p_amount => v_payment.stars_total::bigint,
      p_type => 'purchase',
      p_dedupe_key => 'purchase:' || v_payment.id,
      p_metadata => pg_catalog.jsonb_build_object(
        'package', v_payment.package_type,
        'payment_intent', v_payment.stripe_payment_intent_id,
        'stars_purchased', v_payment.stars_purchased,
        'stars_bonus', v_payment.stars_bonus),
      p_related_payment_id => v_payment.id
    );
    perform private.qualify_invite(v_payment.user_id, v_payment.id);
  end if;
  return v_payment;
end
$$;

-- Claw back stars up to the proportion of the payment now refunded or lost in a dispute.
create function private.reverse_payment_stars(
  p_payment_id uuid,
  p_type public.transaction_type,
  p_dedupe_key text,
  p_metadata jsonb
)
returns public.payments
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_payment public.payments;
  v_target integer;
  v_delta integer;
  v_shortfall integer := 0;
  v_row public.wallet_transactions;
begin
  select * into v_payment from public.payments p where p.id = p_payment_id;
  v_target := (v_payment.stars_total::bigint
               * least(v_payment.amount, v_payment.amount_refunded + v_payment.amount_disputed)
               / v_payment.amount)::integer;
  v_delta := v_target - v_payment.stars_clawed_back;
  if v_delta > 0 then
    v_row := private.apply_wallet_change(
      p_user_id => v_payment.user_id,
      p_currency => 'STAR',
      p_amount => -v_delta::bigint,
      p_type => p_type,
      p_dedupe_key => p_dedupe_key,
      p_metadata => coalesce(p_metadata, '{}'::jsonb) || pg_catalog.jsonb_build_object(
        'payment_id', v_payment.id,
        'amount_refunded', v_payment.amount_refunded,
        'amount_disputed', v_payment.amount_disputed),
      p_related_payment_id => v_payment.id,
      p_clamp => true
    );
    -- NULL: nothing left to take at all; otherwise the core recorded what it could not take.
    v_shortfall := case when v_row.id is null then v_delta
                        else coalesce((v_row.metadata ->> 'shortfall')::integer, 0) end;
  end if;
  update public.payments p
     set stars_clawed_back = greatest(p.stars_clawed_back, v_target),
         stars_shortfall = p.stars_shortfall + v_shortfall
   where p.id = p_payment_id
  returning * into v_payment;
  update public.payments p set status = private.payment_status_of(v_payment)
   where p.id = p_payment_id
  returning * into v_payment;
  return v_payment;
end
$$;

create function private.on_payment_intent_succeeded(p_intent jsonb)
returns text
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_payment public.payments;
begin
  v_payment := private.lock_payment(p_intent ->> 'id', null, p_intent -> 'metadata');
  if v_payment.id is null then
    return 'unknown_payment';
  end if;
  v_payment := private.settle_payment(v_payment, p_intent ->> 'id',
                                      p_intent ->> 'latest_charge');
  return 'settled';
end
$$;

-- payment_failed and canceled: only a payment that has not settled moves.
create function private.on_payment_intent_unsuccessful(p_intent jsonb, p_status public.payment_status)
returns text
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_payment public.payments;
  v_error jsonb := p_intent -> 'last_payment_error';
begin
  v_payment := private.lock_payment(p_intent ->> 'id', null, p_intent -> 'metadata');
  if v_payment.id is null then
    return 'unknown_payment';
  end if;
  if v_payment.status not in ('pending', 'failed', 'canceled') then
    return 'ignored_after_success';
  end if;
  update public.payments p
     set stripe_payment_intent_id = coalesce(p.stripe_payment_intent_id, p_intent ->> 'id'),
         -- canceled is final for a PaymentIntent; a late failure report does not undo it.
         status = case when p.status = 'canceled' then p.status else p_status end,
         error_code = coalesce(left(coalesce(v_error ->> 'decline_code', v_error ->> 'code'), 100),
                               p.error_code),
         error_message = coalesce(left(v_error ->> 'message', 500), p.error_message)
   where p.id = v_payment.id;
  return p_status::text;
end
$$;

create function private.on_charge_refunded(p_charge jsonb)
returns text
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_payment public.payments;
  v_refunded bigint;
begin
  v_payment := private.lock_payment(p_charge ->> 'payment_intent', p_charge ->> 'id',
                                    p_charge -> 'metadata');
  if v_payment.id is null then
    return 'unknown_payment';
  end if;
  v_payment := private.settle_payment(v_payment, p_charge ->> 'payment_intent', p_charge ->> 'id');
  v_refunded := least(v_payment.amount, greatest(0, coalesce((p_charge ->> 'amount_refunded')::bigint, 0)));
  if v_refunded <= v_payment.amount_refunded then
    return 'refund_already_applied';
  end if;
  update public.payments p set amount_refunded = v_refunded where p.id = v_payment.id;
  perform private.reverse_payment_stars(
    v_payment.id, 'refund', 'stripe-refund:' || (p_charge ->> 'id') || ':' || v_refunded,
    pg_catalog.jsonb_build_object('charge', p_charge ->> 'id'));
  return 'refunded';
end
$$;

create function private.on_dispute_closed(p_dispute jsonb)
returns text
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_payment public.payments;
  v_disputed bigint;
begin
  if p_dispute ->> 'status' is distinct from 'lost' then
    return 'dispute_not_lost';
  end if;
  v_payment := private.lock_payment(p_dispute ->> 'payment_intent', p_dispute ->> 'charge', null);
  if v_payment.id is null then
    return 'unknown_payment';
  end if;
  v_payment := private.settle_payment(v_payment, p_dispute ->> 'payment_intent',
                                      p_dispute ->> 'charge');
  v_disputed := least(v_payment.amount, greatest(0, coalesce((p_dispute ->> 'amount')::bigint, 0)));
  if v_disputed <= v_payment.amount_disputed then
    return 'dispute_already_applied';
  end if;
  update public.payments p set amount_disputed = v_disputed, disputed = true
   where p.id = v_payment.id;
  perform private.reverse_payment_stars(
    v_payment.id, 'dispute', 'stripe-dispute:' || (p_dispute ->> 'id'),
    pg_catalog.jsonb_build_object('dispute', p_dispute ->> 'id', 'reason', p_dispute ->> 'reason'));
  return 'dispute_lost';
end
$$;

revoke all on function private.lock_payment(text, text, jsonb) from public, anon, authenticated;
revoke all on function private.payment_status_of(public.payments) from public, anon, authenticated;
revoke all on function private.settle_payment(public.payments, text, text)
  from public, anon, authenticated;
revoke all on function private.reverse_payment_stars(uuid, public.transaction_type, text, jsonb)
  from public, anon, authenticated;
revoke all on function private.on_payment_intent_succeeded(jsonb) from public, anon, authenticated;
revoke all on function private.on_payment_intent_unsuccessful(jsonb, public.payment_status)
  from public, anon, authenticated;
revoke all on function private.on_charge_refunded(jsonb) from public, anon, authenticated;
revoke all on function private.on_dispute_closed(jsonb) from public, anon, authenticated;

grant execute on function private.lock_payment(text, text, jsonb) to service_role;
grant execute on function private.payment_status_of(public.payments) to service_role;
grant execute on function private.settle_payment(public.payments, text, text) to service_role;
grant execute on function private.reverse_payment_stars(uuid, public.transaction_type, text, jsonb)
  to service_role;
grant execute on function private.on_payment_intent_succeeded(jsonb) to service_role;
grant execute on function private.on_payment_intent_unsuccessful(jsonb, public.payment_status)
  to service_role;
grant execute on function private.on_charge_refunded(jsonb) to service_role;
grant execute on function private.on_dispute_closed(jsonb) to service_role;
