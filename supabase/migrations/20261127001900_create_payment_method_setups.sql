-- The SetupIntent made for a (user, Idempotency-Key) of payment-methods setup, so that a replay
-- of the same key returns the same SetupIntent for as long as the row exists, not only within
-- Stripe's 24-hour idempotency window. Private: the app never reads it (the card itself appears
-- in user_payment_methods through the webhook).

create table private.payment_method_setups (
  user_id uuid not null references public.users (id) on delete cascade,
  idempotency_key text not null check (char_length(idempotency_key) between 1 and 255),
  stripe_setup_intent_id text not null unique,
  created_at timestamptz not null default now(),
  primary key (user_id, idempotency_key)
);

revoke all on table private.payment_method_setups from public, anon, authenticated;
grant select, insert on table private.payment_method_setups to service_role;

-- The SetupIntent recorded for the key, or null.
create function public.find_setup_intent(p_user_id uuid, p_idempotency_key text)
returns text
language sql
stable
set search_path = ''
as $$
  select s.stripe_setup_intent_id from private.payment_method_setups s
   where s.user_id = p_user_id and s.idempotency_key = p_idempotency_key
$$;

-- Record the SetupIntent of the key; the first recording wins and is returned.
create function public.record_setup_intent(
  p_user_id uuid,
  p_idempotency_key text,
  p_setup_intent_id text
)
returns text
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_recorded text;
begin
  insert into private.payment_method_setups (user_id, idempotency_key, stripe_setup_intent_id)
  values (p_user_id, p_idempotency_key, p_setup_intent_id)
  on conflict (user_id, idempotency_key) do nothing
  returning stripe_setup_intent_id into v_recorded;
  if v_recorded is null then
    select s.stripe_setup_intent_id into v_recorded from private.payment_method_setups s
     where s.user_id = p_user_id and s.idempotency_key = p_idempotency_key;
  end if;
  return v_recorded;
end
$$;

revoke all on function public.find_setup_intent(uuid, text) from public, anon, authenticated;
revoke all on function public.record_setup_intent(uuid, text, text)
  from public, anon, authenticated;
grant execute on function public.find_setup_intent(uuid, text) to service_role;
grant execute on function public.record_setup_intent(uuid, text, text) to service_role;
