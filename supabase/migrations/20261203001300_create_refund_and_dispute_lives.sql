-- Refunds and disputes over their whole life (redefines private.payment_status_of,
-- private.on_payment_intent_unsuccessful, private.on_charge_refunded of
-- 20261127001200_create_payment_event_functions; replaces private.reverse_payment_stars and
-- private.on_dispute_closed).
--
-- One rule, recomputed from facts after every event, so every order and repetition converges:
--   refunded = least(amount, greatest(active refunds, charge's reported amount_refunded minus
--              refunds known to have failed or been canceled))
--   disputed = disputes open (needs_response, under_review) or lost
--   stars reversed = floor(stars_total x least(amount, refunded + disputed) / amount)
-- A refund is active while pending, requires_action or succeeded; a dispute from the moment
-- funds are withdrawn until it is won. Going up debits the difference (never below zero, the
-- shortfall kept on the ledger row and the payment); going down first forgives shortfall, then
-- credits the rest. Each row's dedupe key is the refund's or dispute's own and its direction:
--   stripe-refund:<refund> (debit), stripe-refund-reversal:<refund> (credit),
--   dispute-hold:<dispute> (an open dispute's stars leave the balance and are shown as held),
--   stripe-dispute:<dispute> (a dispute first reported lost), dispute-release:<dispute> (won),
--   stripe-refund:<charge>:<amount_refunded> (a charge.refunded total ahead of its refunds).
-- Refunds and disputes only move forward through their statuses (failed, canceled, won and
-- lost are final), so each of these keys is needed at most once. A lost dispute keeps its hold
-- as the claw-back: no second debit.

drop function private.on_dispute_closed(jsonb);
drop function private.reverse_payment_stars(uuid, public.transaction_type, text, jsonb);

create or replace function private.payment_status_of(p_payment public.payments)
returns public.payment_status
language sql
immutable
set search_path = ''
as $$
  select case
    when private.unsettled_rank(p_payment.status) is not null then p_payment.status
    when p_payment.amount_disputed > 0 then 'disputed'::public.payment_status
    when p_payment.amount_refunded >= p_payment.amount then 'refunded'::public.payment_status
    when p_payment.amount_refunded > 0 then 'partially_refunded'::public.payment_status
    else 'succeeded'::public.payment_status
  end
$$;

create function private.refund_rank(p_status text)
returns integer
language sql
immutable
set search_path = ''
as $$
  select case p_status when 'requires_action' then 1 when 'pending' then 2
    when 'succeeded' then 3 when 'failed' then 4 when 'canceled' then 4 else null end
$$;

-- An inquiry (warning_*) withdraws no funds; a chargeback does, until it is won.
create function private.dispute_rank(p_status text)
returns integer
language sql
immutable
set search_path = ''
as $$
  select case p_status
    when 'warning_needs_response' then 1 when 'warning_under_review' then 2
    when 'needs_response' then 3 when 'under_review' then 4
    when 'won' then 5 when 'lost' then 5 when 'warning_closed' then 5 when 'prevented' then 5
    else null end
$$;

-- Bring the payment's reversed stars to what its refunds and disputes say now. Returns the
-- stars moved (negative: debited, positive: credited back). The payment must be locked.
create function private.reconcile_payment_stars(
  p_payment_id uuid,
  p_debit_type public.transaction_type,
  p_debit_key text,
  p_credit_type public.transaction_type,
  p_credit_key text,
  p_metadata jsonb
)
returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_payment public.payments;
  v_active bigint;
  v_inactive bigint;
  v_refunded bigint;
  v_disputed bigint;
  v_target integer;
  v_delta integer;
  v_forgiven integer := 0;
  v_shortfall integer := 0;
  v_moved integer := 0;
  v_row public.wallet_transactions;
begin
  select * into v_payment from public.payments p where p.id = p_payment_id;
  select coalesce(sum(r.amount) filter (where private.refund_rank(r.status) <= 3), 0),
         coalesce(sum(r.amount) filter (where private.refund_rank(r.status) = 4), 0)
    into v_active, v_inactive
    from public.payment_refunds r where r.payment_id = p_payment_id;
  v_refunded := least(v_payment.amount,
                      greatest(v_active, v_payment.charge_amount_refunded - v_inactive));
  select coalesce(sum(d.amount), 0) into v_disputed from public.payment_disputes d
   where d.payment_id = p_payment_id and d.status in ('needs_response', 'under_review', 'lost');
  v_disputed := least(v_payment.amount, v_disputed);
  v_target := (v_payment.stars_total::bigint
               * least(v_payment.amount, v_refunded + v_disputed) / v_payment.amount)::integer;
  v_delta := v_target - v_payment.stars_clawed_back;
  if v_delta > 0 then
    v_row := private.apply_wallet_change(
      p_user_id => v_payment.user_id, p_currency => 'STAR', p_amount => -v_delta::bigint,
      p_type => p_debit_type, p_dedupe_key => p_debit_key,
      p_metadata => coalesce(p_metadata, '{}'::jsonb) || pg_catalog.jsonb_build_object(
        'payment_id', v_payment.id, 'amount_refunded', v_refunded,
        'amount_disputed', v_disputed),
      p_related_payment_id => v_payment.id, p_clamp => true);
    -- NULL: nothing left to take at all; otherwise the core recorded what it could not take.
    v_shortfall := case when v_row.id is null then v_delta
                        else coalesce((v_row.metadata ->> 'shortfall')::integer, 0) end;
    v_moved := -(v_delta - v_shortfall);
  elsif v_delta < 0 then
    -- Stars the user never gave back are forgiven first; only stars taken come back.
    v_forgiven := least(v_payment.stars_shortfall, -v_delta);
    if -v_delta - v_forgiven > 0 then
      v_row := private.apply_wallet_change(
        p_user_id => v_payment.user_id, p_currency => 'STAR',
        p_amount => (-v_delta - v_forgiven)::bigint,
        p_type => p_credit_type, p_dedupe_key => p_credit_key,
        p_metadata => coalesce(p_metadata, '{}'::jsonb) || pg_catalog.jsonb_build_object(
          'payment_id', v_payment.id, 'amount_refunded', v_refunded,
          'amount_disputed', v_disputed, 'shortfall_forgiven', v_forgiven),
        p_related_payment_id => v_payment.id);
      v_moved := -v_delta - v_forgiven;
    end if;
  end if;
  update public.payments p
     set amount_refunded = v_refunded,
         amount_disputed = v_disputed,
         stars_clawed_back = v_target,
         stars_shortfall = p.stars_shortfall + v_shortfall - v_forgiven
   where p.id = p_payment_id
  returning * into v_payment;
  update public.payments p set status = private.payment_status_of(v_payment)
   where p.id = p_payment_id;
  return v_moved;
end
$$;

-- Settle once: status succeeded, stars credited, the invitee's invite qualified. Any status
-- before settlement (requires_action and processing included) settles.
create or replace function private.settle_payment(
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
  v_settling boolean := private.unsettled_rank(p_payment.status) is not null;
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

-- payment_intent.requires_action and .processing: an unsettled payment moves forward only.
create function private.on_payment_intent_pending(p_intent jsonb, p_status public.payment_status)
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
  if private.unsettled_rank(v_payment.status) is null then
    return 'ignored_after_success';
  end if;
  update public.payments p
     set stripe_payment_intent_id = coalesce(p.stripe_payment_intent_id, p_intent ->> 'id'),
         status = case when private.unsettled_rank(p_status) > private.unsettled_rank(p.status)
                       then p_status else p.status end
   where p.id = v_payment.id;
  return p_status::text;
end
$$;

-- payment_failed and canceled: only a payment that has not settled moves, and only forward.
create or replace function private.on_payment_intent_unsuccessful(
  p_intent jsonb,
  p_status public.payment_status
)
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
  if private.unsettled_rank(v_payment.status) is null then
    return 'ignored_after_success';
  end if;
  update public.payments p
     set stripe_payment_intent_id = coalesce(p.stripe_payment_intent_id, p_intent ->> 'id'),
         -- canceled is final for a PaymentIntent; a late failure report does not undo it.
         status = case when private.unsettled_rank(p_status) > private.unsettled_rank(p.status)
                       then p_status else p.status end,
         error_code = coalesce(left(coalesce(v_error ->> 'decline_code', v_error ->> 'code'), 100),
                               p.error_code),
         error_message = coalesce(left(v_error ->> 'message', 500), p.error_message)
   where p.id = v_payment.id;
  return p_status::text;
end
$$;

-- One refund's status, moving forward only, and its stars. The payment must be locked.
create function private.record_refund(p_payment_id uuid, p_refund jsonb)
returns text
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_id text := p_refund ->> 'id';
  v_status text := p_refund ->> 'status';
  v_amount bigint;
  v_existing public.payment_refunds;
begin
  if jsonb_typeof(p_refund -> 'amount') is distinct from 'number' or v_id is null
     or private.refund_rank(v_status) is null then
    return 'ignored_refund';
  end if;
  v_amount := (p_refund ->> 'amount')::bigint;
  if v_amount <= 0 then
    return 'ignored_refund';
  end if;
  select * into v_existing from public.payment_refunds r where r.stripe_refund_id = v_id for update;
  if found then
    if v_existing.payment_id <> p_payment_id then
      raise exception using errcode = 'MV006', message = 'validation_error',
        detail = format('Refund %s belongs to another payment.', v_id);
    end if;
    if private.refund_rank(v_status) <= private.refund_rank(v_existing.status) then
      return 'refund_already_applied';
    end if;
    update public.payment_refunds r set status = v_status where r.id = v_existing.id;
  else
    insert into public.payment_refunds (payment_id, stripe_refund_id, amount, status)
    values (p_payment_id, v_id, v_amount, v_status);
  end if;
  perform private.reconcile_payment_stars(
    p_payment_id, 'refund', 'stripe-refund:' || v_id,
    'refund_reversal', 'stripe-refund-reversal:' || v_id,
    pg_catalog.jsonb_build_object('refund', v_id, 'refund_status', v_status));
  return 'refund_' || v_status;
end
$$;

-- refund.created, refund.updated, refund.failed, charge.refund.updated: a refund object.
create function private.on_refund_event(p_refund jsonb)
returns text
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_payment public.payments;
begin
  v_payment := private.lock_payment(p_refund ->> 'payment_intent', p_refund ->> 'charge', null);
  if v_payment.id is null then
    return 'unknown_payment';
  end if;
  -- A refund exists only for a charge that succeeded.
  v_payment := private.settle_payment(v_payment, p_refund ->> 'payment_intent',
                                      p_refund ->> 'charge');
  return private.record_refund(v_payment.id, p_refund);
end
$$;

-- charge.refunded: the refunds it lists (when it lists them), then its amount_refunded as a
-- floor for refunds whose own events are still on their way.
create or replace function private.on_charge_refunded(p_charge jsonb)
returns text
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_payment public.payments;
  v_refund jsonb;
  v_reported bigint;
  v_changed boolean := false;
begin
  v_payment := private.lock_payment(p_charge ->> 'payment_intent', p_charge ->> 'id',
                                    p_charge -> 'metadata');
  if v_payment.id is null then
    return 'unknown_payment';
  end if;
  v_payment := private.settle_payment(v_payment, p_charge ->> 'payment_intent', p_charge ->> 'id');
  if jsonb_typeof(p_charge -> 'refunds' -> 'data') = 'array' then
    for v_refund in select value from jsonb_array_elements(p_charge -> 'refunds' -> 'data') loop
      if private.record_refund(v_payment.id, v_refund)
         not in ('refund_already_applied', 'ignored_refund') then
        v_changed := true;
      end if;
    end loop;
  end if;
  v_reported := least(v_payment.amount,
                      greatest(0, coalesce((p_charge ->> 'amount_refunded')::bigint, 0)));
  if v_reported > v_payment.charge_amount_refunded then
    update public.payments p set charge_amount_refunded = v_reported where p.id = v_payment.id;
    perform private.reconcile_payment_stars(
      v_payment.id, 'refund', 'stripe-refund:' || (p_charge ->> 'id') || ':' || v_reported,
      'refund_reversal', 'stripe-refund-reversal:' || (p_charge ->> 'id') || ':' || v_reported,
      pg_catalog.jsonb_build_object('charge', p_charge ->> 'id'));
    v_changed := true;
  end if;
  return case when v_changed then 'refunded' else 'refund_already_applied' end;
end
$$;

-- charge.dispute.created, .updated, .funds_withdrawn, .funds_reinstated, .closed.
create function private.on_dispute_event(p_dispute jsonb)
returns text
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_id text := p_dispute ->> 'id';
  v_status text := p_dispute ->> 'status';
  v_amount bigint;
  v_payment public.payments;
  v_existing public.payment_disputes;
begin
  if jsonb_typeof(p_dispute -> 'amount') is distinct from 'number'
     or private.dispute_rank(v_status) is null then
    return 'ignored_dispute';
  end if;
  v_amount := (p_dispute ->> 'amount')::bigint;
  if v_amount <= 0 then
    return 'ignored_dispute';
  end if;
  v_payment := private.lock_payment(p_dispute ->> 'payment_intent', p_dispute ->> 'charge', null);
  if v_payment.id is null then
    return 'unknown_payment';
  end if;
  -- A dispute exists only for a charge that succeeded.
  v_payment := private.settle_payment(v_payment, p_dispute ->> 'payment_intent',
                                      p_dispute ->> 'charge');
  select * into v_existing from public.payment_disputes d
   where d.stripe_dispute_id = v_id for update;
  if found then
    if v_existing.payment_id <> v_payment.id then
      raise exception using errcode = 'MV006', message = 'validation_error',
        detail = format('Dispute %s belongs to another payment.', v_id);
    end if;
    if private.dispute_rank(v_status) <= private.dispute_rank(v_existing.status) then
      return 'dispute_already_applied';
    end if;
    update public.payment_disputes d set status = v_status, amount = v_amount
     where d.id = v_existing.id;
  else
    insert into public.payment_disputes (payment_id, stripe_dispute_id, amount, status)
    values (v_payment.id, v_id, v_amount, v_status)
    returning * into v_existing;
  end if;
  perform private.reconcile_payment_stars(
    v_payment.id, 'dispute',
    case when v_status = 'lost' then 'stripe-dispute:' else 'dispute-hold:' end || v_id,
    'dispute_release', 'dispute-release:' || v_id,
    pg_catalog.jsonb_build_object('dispute', v_id, 'reason', p_dispute ->> 'reason',
                                  'dispute_status', v_status));
  if v_status in ('needs_response', 'under_review', 'lost', 'won') then
    update public.payments p set disputed = true where p.id = v_payment.id;
  end if;
  return case v_status
    when 'lost' then 'dispute_lost' when 'won' then 'dispute_won'
    when 'needs_response' then 'dispute_held' when 'under_review' then 'dispute_held'
    else 'dispute_' || v_status end;
end
$$;

revoke all on function private.refund_rank(text) from public, anon, authenticated;
revoke all on function private.dispute_rank(text) from public, anon, authenticated;
revoke all on function private.reconcile_payment_stars(
  uuid, public.transaction_type, text, public.transaction_type, text, jsonb)
  from public, anon, authenticated;
revoke all on function private.on_payment_intent_pending(jsonb, public.payment_status)
  from public, anon, authenticated;
revoke all on function private.record_refund(uuid, jsonb) from public, anon, authenticated;
revoke all on function private.on_refund_event(jsonb) from public, anon, authenticated;
revoke all on function private.on_dispute_event(jsonb) from public, anon, authenticated;

grant execute on function private.refund_rank(text) to service_role;
grant execute on function private.dispute_rank(text) to service_role;
grant execute on function private.reconcile_payment_stars(
  uuid, public.transaction_type, text, public.transaction_type, text, jsonb) to service_role;
grant execute on function private.on_payment_intent_pending(jsonb, public.payment_status)
  to service_role;
grant execute on function private.record_refund(uuid, jsonb) to service_role;
grant execute on function private.on_refund_event(jsonb) to service_role;
grant execute on function private.on_dispute_event(jsonb) to service_role;
