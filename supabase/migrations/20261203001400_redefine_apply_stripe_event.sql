-- apply_stripe_event over every event type of a payment's life (redefines it from
-- 20261127001400_create_apply_stripe_event). The handled types are listed once, in
-- public.stripe_event_types(); the webhook's own list is tied to it by a test. A type this
-- function does not handle raises MV007 before anything is recorded, so the event is never
-- marked processed and Stripe retries it.

create function public.stripe_event_types()
returns text[]
language sql
immutable
set search_path = ''
as $$
  select array[
    'payment_intent.requires_action', 'payment_intent.processing',
    'payment_intent.succeeded', 'payment_intent.payment_failed', 'payment_intent.canceled',
    'charge.refunded', 'charge.refund.updated',
    'refund.created', 'refund.updated', 'refund.failed',
    'charge.dispute.created', 'charge.dispute.updated', 'charge.dispute.funds_withdrawn',
    'charge.dispute.funds_reinstated', 'charge.dispute.closed',
    'payment_method.attached', 'payment_method.detached', 'payment_method.updated'
  ]::text[]
$$;

create or replace function public.apply_stripe_event(
  p_event_id text,
  p_event_type text,
  p_object jsonb,
  p_previous jsonb default null
)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_result text;
  v_intent text;
  v_credited bigint;
  v_clawed_back bigint;
begin
  if p_event_id is null or p_event_id !~ '^evt_[A-Za-z0-9_]{1,250}$'
     or p_event_type is null or jsonb_typeof(p_object) is distinct from 'object'
     or jsonb_typeof(p_object -> 'id') is distinct from 'string' then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'A Stripe event needs an evt_ id, a type and an object with an id.';
  end if;
  if not p_event_type = any (public.stripe_event_types()) then
    raise exception using errcode = 'MV007', message = 'unhandled_event_type',
      detail = format('Stripe events of type %s are not handled.', p_event_type);
  end if;

  insert into public.stripe_events (id, type) values (p_event_id, p_event_type)
  on conflict (id) do nothing;
  if not found then
    return pg_catalog.jsonb_build_object('duplicate', true, 'result', 'duplicate');
  end if;

  v_result := case p_event_type
    when 'payment_intent.requires_action'
      then private.on_payment_intent_pending(p_object, 'requires_action')
    when 'payment_intent.processing'
      then private.on_payment_intent_pending(p_object, 'processing')
    when 'payment_intent.succeeded' then private.on_payment_intent_succeeded(p_object)
    when 'payment_intent.payment_failed'
      then private.on_payment_intent_unsuccessful(p_object, 'failed')
    when 'payment_intent.canceled'
      then private.on_payment_intent_unsuccessful(p_object, 'canceled')
    when 'charge.refunded' then private.on_charge_refunded(p_object)
    when 'charge.refund.updated' then private.on_refund_event(p_object)
    when 'refund.created' then private.on_refund_event(p_object)
    when 'refund.updated' then private.on_refund_event(p_object)
    when 'refund.failed' then private.on_refund_event(p_object)
    when 'charge.dispute.created' then private.on_dispute_event(p_object)
    when 'charge.dispute.updated' then private.on_dispute_event(p_object)
    when 'charge.dispute.funds_withdrawn' then private.on_dispute_event(p_object)
    when 'charge.dispute.funds_reinstated' then private.on_dispute_event(p_object)
    when 'charge.dispute.closed' then private.on_dispute_event(p_object)
    when 'payment_method.attached'
      then private.on_payment_method_event(p_event_type, p_object, p_previous)
    when 'payment_method.updated'
      then private.on_payment_method_event(p_event_type, p_object, p_previous)
    when 'payment_method.detached'
      then private.on_payment_method_event(p_event_type, p_object, p_previous)
  end;
  if v_result is null then
    -- Listed in stripe_event_types() but not dispatched above: roll back, Stripe retries.
    raise exception using errcode = 'MV007', message = 'unhandled_event_type',
      detail = format('Stripe events of type %s are listed but not handled.', p_event_type);
  end if;

  -- The stars this event moved (ledger rows of its payment written by this transaction), for
  -- the StarsCredited metric: the caller never reads balances itself.
  v_intent := case when p_event_type like 'payment\_intent.%' then p_object ->> 'id'
                   else p_object ->> 'payment_intent' end;
  select coalesce(sum(w.amount) filter (where w.amount > 0), 0),
         coalesce(-sum(w.amount) filter (where w.amount < 0), 0)
    into v_credited, v_clawed_back
    from public.payments p
    join public.wallet_transactions w on w.related_payment_id = p.id
   where p.stripe_payment_intent_id = v_intent
     and w.currency = 'STAR'
     and w.xmin = pg_catalog.xid(pg_catalog.pg_current_xact_id());

  return pg_catalog.jsonb_build_object('duplicate', false, 'result', v_result,
    'stars_credited', v_credited, 'stars_clawed_back', v_clawed_back);
end
$$;

revoke all on function public.stripe_event_types() from public, anon, authenticated;
grant execute on function public.stripe_event_types() to service_role;
