-- The stripe-webhook function's one SQL call (service_role only): record the event id and apply
-- its effect in the same transaction. A replayed event id is a no-op that says so; a failure
-- rolls back both, so Stripe's retry finds the event unprocessed.

create function public.apply_stripe_event(
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

  insert into public.stripe_events (id, type) values (p_event_id, p_event_type)
  on conflict (id) do nothing;
  if not found then
    return pg_catalog.jsonb_build_object('duplicate', true, 'result', 'duplicate');
  end if;

  v_result := case p_event_type
    when 'payment_intent.succeeded' then private.on_payment_intent_succeeded(p_object)
    when 'payment_intent.payment_failed'
      then private.on_payment_intent_unsuccessful(p_object, 'failed')
    when 'payment_intent.canceled'
      then private.on_payment_intent_unsuccessful(p_object, 'canceled')
    when 'charge.refunded' then private.on_charge_refunded(p_object)
    when 'charge.dispute.closed' then private.on_dispute_closed(p_object)
    when 'payment_method.attached'
      then private.on_payment_method_event(p_event_type, p_object, p_previous)
    when 'payment_method.updated'
      then private.on_payment_method_event(p_event_type, p_object, p_previous)
    when 'payment_method.detached'
      then private.on_payment_method_event(p_event_type, p_object, p_previous)
    else 'ignored'
  end;

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

revoke all on function public.apply_stripe_event(text, text, jsonb, jsonb)
  from public, anon, authenticated;
grant execute on function public.apply_stripe_event(text, text, jsonb, jsonb) to service_role;
