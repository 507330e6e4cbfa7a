-- exchange_coins: the caller converts coins to whole stars at the database's rate
-- (pricing_settings.coins_per_star). One transaction: a coin debit and a star credit, with dedupe
-- keys 'exchange:<user>:<key>' and 'exchange:<user>:<key>:star', so a replay of the same key
-- returns the first result and the same key with another amount is refused (MV004).
-- Owner's rights because the ledger is written only through the wallet core; the user is
-- auth.uid(), never a parameter.

create function public.exchange_coins(coins integer, idempotency_key text default null)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_user_id uuid := auth.uid();
  v_rate integer;
  v_key text := coalesce(idempotency_key, pg_catalog.gen_random_uuid()::text);
  v_coin_row public.wallet_transactions;
  v_star_row public.wallet_transactions;
begin
  if v_user_id is null then
    raise exception using errcode = '42501', message = 'permission denied',
      detail = 'exchange_coins needs a signed-in user.';
  end if;
  if char_length(v_key) not between 1 and 255 then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'The idempotency key must be 1 to 255 characters long.';
  end if;
  select s.coins_per_star into v_rate from public.pricing_settings s;
  if coins is null or coins <= 0 or coins % v_rate <> 0 then
    raise exception using errcode = 'MV003', message = 'not_a_multiple_of_rate',
      detail = format('Coins are exchanged in whole stars: a positive multiple of %s.', v_rate);
  end if;

  v_coin_row := private.apply_wallet_change(
    p_user_id => v_user_id,
    p_currency => 'COIN',
    p_amount => -coins::bigint,
    p_type => 'exchange',
    p_dedupe_key => 'exchange:' || v_user_id || ':' || v_key,
    p_metadata => pg_catalog.jsonb_build_object('coins', coins, 'rate', v_rate)
  );
  if v_coin_row.amount <> -coins then
    raise exception using errcode = 'MV004', message = 'idempotency_key_reused',
      detail = 'This idempotency key was used to exchange a different number of coins.';
  end if;
  v_star_row := private.apply_wallet_change(
    p_user_id => v_user_id,
    p_currency => 'STAR',
    p_amount => (coins / v_rate)::bigint,
    p_type => 'exchange',
    p_dedupe_key => 'exchange:' || v_user_id || ':' || v_key || ':star',
    p_metadata => pg_catalog.jsonb_build_object('coins', coins, 'rate', v_rate)
  );

  return pg_catalog.jsonb_build_object(
    'coins_spent', -v_coin_row.amount,
    'stars_received', v_star_row.amount,
    'star_balance', v_star_row.balance_after,
    'coin_balance', v_coin_row.balance_after
  );
end
$$;

revoke all on function public.exchange_coins(integer, text) from public, anon, authenticated;
grant execute on function public.exchange_coins(integer, text) to authenticated;
