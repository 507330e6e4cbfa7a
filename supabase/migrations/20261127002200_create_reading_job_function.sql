-- create-reading, in one transaction: the idempotency key, the per-user cap of open readings,
-- the price, the card draw and the charge. Called by the create-reading function with the
-- service key after it has verified the caller's access token, so the user is a parameter and
-- the function is granted to service_role alone.

-- Draws p_card_count distinct cards with orientations. Sorting every card by a fresh
-- gen_random_uuid() (pg_strong_random: cryptographically secure, and built in, unlike pgcrypto)
-- gives a uniformly random permutation; its version nibble is the same in every key, so it does
-- not bias the order. The orientation is one more random bit per card.
create function private.draw_cards(p_card_count integer, p_locale text)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_cards jsonb;
begin
  select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'position', d.position,
           'card_id', d.id,
           'name', case when p_locale = 'en' then d.name_en else d.name_th end,
           'orientation', case when d.reversed then 'reversed' else 'upright' end
         ) order by d.position)
    into v_cards
    from (
      select c.id, c.name_en, c.name_th,
             (pg_catalog.row_number() over (order by c.draw_key) - 1)::integer as position,
             (pg_catalog.get_byte(pg_catalog.uuid_send(pg_catalog.gen_random_uuid()), 0) & 1) = 1
               as reversed
        from (
          select t.id, t.name_en, t.name_th,
                 pg_catalog.uuid_send(pg_catalog.gen_random_uuid()) as draw_key
            from public.tarot_cards t
        ) c
       order by c.draw_key
       limit p_card_count
    ) d;
  if v_cards is null or pg_catalog.jsonb_array_length(v_cards) <> p_card_count then
    raise exception 'the tarot_cards table holds fewer than % cards', p_card_count;
  end if;
  return v_cards;
end
$$;

revoke all on function private.draw_cards(integer, text) from public, anon, authenticated;
grant execute on function private.draw_cards(integer, text) to service_role;

-- Returns the response of create-reading: {job_id, status, cost_stars, star_balance, cards,
-- replayed}. A replay (same user, same key, same request hash) returns the first response and
-- changes nothing; the same key with another request raises MV004. The user's row lock (taken
-- again by the wallet core) serialises a user's requests, so the replay check, the cap and the
-- charge cannot race.
create function public.create_reading_job(
  p_user_id uuid,
  p_idempotency_key text,
  p_request_hash text,
  p_question text,
  p_card_count integer,
  p_locale text default 'th',
  p_max_pending integer default 3
)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_question text := pg_catalog.btrim(p_question);
  v_dedupe_key text;
  v_balance bigint;
  v_price integer;
  v_pending integer;
  v_job public.jobs%rowtype;
  v_job_id uuid := pg_catalog.gen_random_uuid();
  v_cards jsonb;
  v_response jsonb;
  v_charge public.wallet_transactions;
begin
  if p_idempotency_key is null or p_idempotency_key !~ '^[\x20-\x7e]{1,255}$' then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'The Idempotency-Key must be 1 to 255 printable ASCII characters.';
  end if;
  if p_request_hash is null or char_length(p_request_hash) not between 1 and 128 then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'The request hash is missing.';
  end if;
  if v_question is null or char_length(v_question) not between 1 and 500 then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'The question must be 1 to 500 characters long.';
  end if;
  if p_locale is null or p_locale not in ('th', 'en') then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'The locale must be th or en.';
  end if;
  if p_max_pending is null or p_max_pending < 1 then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'The cap of open readings must be positive.';
  end if;

  select u.star_balance into v_balance
    from public.users u
   where u.id = p_user_id
     for no key update;
  if not found then
    raise exception using errcode = 'MV005', message = 'not_found',
      detail = 'The user does not exist.';
  end if;

  v_dedupe_key := 'create-reading:' || p_user_id::text || ':' || p_idempotency_key;
  select j.* into v_job from public.jobs j where j.dedupe_key = v_dedupe_key;
  if found then
    if v_job.payload ->> 'request_hash' is distinct from p_request_hash then
      raise exception using errcode = 'MV004', message = 'idempotency_key_reused',
        detail = 'This Idempotency-Key was used with a different request.';
    end if;
    return (v_job.payload -> 'response') || pg_catalog.jsonb_build_object('replayed', true);
  end if;

  select p.stars into v_price from public.reading_prices p where p.card_count = p_card_count;
  if not found then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'A reading has 3 or 5 cards.';
  end if;

  select pg_catalog.count(*) into v_pending
    from public.jobs j
   where j.user_id = p_user_id and j.status in ('queued', 'processing', 'failed');
  if v_pending >= p_max_pending then
    raise exception using errcode = 'MV030', message = 'too_many_pending_readings',
      detail = pg_catalog.format('You have %s readings waiting; the limit is %s.',
                                 v_pending, p_max_pending);
  end if;

  if v_balance < v_price then
    raise exception using errcode = 'MV001', message = 'insufficient_stars',
      detail = pg_catalog.format('The balance is %s stars; %s are needed.', v_balance, v_price);
  end if;

  v_cards := private.draw_cards(p_card_count, p_locale);
  v_response := pg_catalog.jsonb_build_object(
    'job_id', v_job_id,
    'status', 'queued',
    'cost_stars', v_price,
    'star_balance', v_balance - v_price,
    'cards', v_cards
  );

  -- The job first: the ledger row references it.
  insert into public.jobs (id, user_id, job_type, dedupe_key, payload, cost_stars)
  values (
    v_job_id, p_user_id, 'tarot_reading', v_dedupe_key,
    pg_catalog.jsonb_build_object(
      'question', v_question,
      'locale', p_locale,
      'card_count', p_card_count,
      'cards', v_cards,
      'request_hash', p_request_hash,
      'response', v_response
    ),
    v_price
  );

  v_charge := private.apply_wallet_change(
    p_user_id, 'STAR', -v_price, 'reading', 'reading:' || v_job_id::text,
    pg_catalog.jsonb_build_object('card_count', p_card_count),
    p_related_job_id => v_job_id
  );
  if v_charge.balance_after <> v_balance - v_price then
    raise exception 'the star balance changed under the user lock';
  end if;

  return v_response || pg_catalog.jsonb_build_object('replayed', false);
end
$$;

revoke all on function public.create_reading_job(uuid, text, text, text, integer, text, integer)
  from public, anon, authenticated;
grant execute on function public.create_reading_job(uuid, text, text, text, integer, text, integer)
  to service_role;
