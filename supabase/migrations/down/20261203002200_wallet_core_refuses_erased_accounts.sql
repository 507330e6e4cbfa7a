-- Back to the wallet core before erased accounts existed.

create or replace function private.apply_wallet_change(
  p_user_id uuid,
  p_currency public.currency,
  p_amount bigint,
  p_type public.transaction_type,
  p_dedupe_key text,
  p_metadata jsonb default '{}'::jsonb,
  p_related_payment_id uuid default null,
  p_related_reading_id uuid default null,
  p_related_invite_id uuid default null,
  p_related_job_id uuid default null,
  p_clamp boolean default false
)
returns public.wallet_transactions
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_balance bigint;
  v_amount bigint := p_amount;
  v_metadata jsonb := coalesce(p_metadata, '{}'::jsonb);
  v_row public.wallet_transactions;
begin
  if p_user_id is null or p_currency is null or p_type is null then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'A wallet change needs a user, a currency and a transaction type.';
  end if;
  if p_amount is null or p_amount = 0 then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'A wallet change must have a non-zero amount.';
  end if;
  if p_dedupe_key is null or btrim(p_dedupe_key) = '' then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'A wallet change needs a dedupe key.';
  end if;
  if jsonb_typeof(v_metadata) <> 'object' then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'Wallet change metadata must be a JSON object.';
  end if;

  select case p_currency when 'STAR' then u.star_balance else u.coin_balance end
    into v_balance
    from public.users u
   where u.id = p_user_id
     for no key update;
  if not found then
    raise exception using errcode = 'MV005', message = 'not_found',
      detail = format('User %s does not exist.', p_user_id);
  end if;

  select t.* into v_row from public.wallet_transactions t where t.dedupe_key = p_dedupe_key;
  if found then
    if v_row.user_id <> p_user_id or v_row.currency <> p_currency
       or v_row.transaction_type <> p_type then
      raise exception using errcode = 'MV004', message = 'idempotency_key_reused',
        detail = format('Dedupe key %s already belongs to a different wallet change.', p_dedupe_key);
    end if;
    return v_row;
  end if;

  if v_balance + p_amount < 0 then
    if not p_clamp then
      if p_currency = 'STAR' then
        raise exception using errcode = 'MV001', message = 'insufficient_stars',
          detail = format('The balance is %s stars; %s are needed.', v_balance, -p_amount);
      end if;
      raise exception using errcode = 'MV002', message = 'insufficient_coins',
        detail = format('The balance is %s coins; %s are needed.', v_balance, -p_amount);
    end if;
    if v_balance = 0 then
      return null;
    end if;
    v_amount := -v_balance;
    v_metadata := v_metadata || jsonb_build_object(
      'requested', p_amount,
      'shortfall', v_amount - p_amount
    );
  end if;

  -- Conditional even under the lock: the balance can never be driven below zero.
  if p_currency = 'STAR' then
    update public.users u set star_balance = u.star_balance + v_amount
     where u.id = p_user_id and u.star_balance + v_amount >= 0
    returning u.star_balance into v_balance;
  else
    update public.users u set coin_balance = u.coin_balance + v_amount
     where u.id = p_user_id and u.coin_balance + v_amount >= 0
    returning u.coin_balance into v_balance;
  end if;
  if not found then
    raise exception using
      errcode = case p_currency when 'STAR' then 'MV001' else 'MV002' end,
      message = case p_currency when 'STAR' then 'insufficient_stars' else 'insufficient_coins' end,
      detail = 'The balance changed while the wallet change was applied.';
  end if;

  insert into public.wallet_transactions (
    user_id, transaction_type, amount, currency, balance_after, dedupe_key, metadata,
    related_payment_id, related_reading_id, related_invite_id, related_job_id
  ) values (
    p_user_id, p_type, v_amount, p_currency, v_balance, p_dedupe_key, v_metadata,
    p_related_payment_id, p_related_reading_id, p_related_invite_id, p_related_job_id
  )
  returning * into v_row;
  return v_row;
end
$$;

revoke all on function private.apply_wallet_change(
  uuid, public.currency, bigint, public.transaction_type, text, jsonb, uuid, uuid, uuid, uuid, boolean
) from public, anon, authenticated;
grant execute on function private.apply_wallet_change(
  uuid, public.currency, bigint, public.transaction_type, text, jsonb, uuid, uuid, uuid, uuid, boolean
) to service_role;
