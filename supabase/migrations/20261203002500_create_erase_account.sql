-- erase_account(): DELETE /account and `ops.admin erase-user`, in one transaction.
--
-- Erases by anonymising, never by deleting what money records point at (docs/account.md):
-- * open readings (queued, retrying, running) are canceled and their stars refunded once (the
--   dead-letter path's dedupe key `reading-refund:<job>`), so a worker still running one finds
--   it no longer processing and its result is dropped as stale;
-- * the balance left after that is forfeited on the ledger ('forfeit' rows to zero), so cached
--   balance = ledger sum = last balance_after still holds and wallet_audit() stays empty;
-- * personal data goes: email, name, picture and the sign-in identity of the users row, every
--   linked identity, saved cards, questions, readings' text and analyses, job payloads, results
--   and errors, SetupIntent records;
-- * what accounting needs stays, anonymised: the users row (id, invite code, tier, invite
--   counts, dates), payments (amounts, statuses, Stripe ids, dates), the ledger (immutable),
--   invites (both parties by id, so an inviter's tier keeps its count) and the Stripe Customer
--   id until the cleanup after commit has deleted the Customer;
-- * erased_at marks the account: the wallet core then refuses credits and debits, sign-in of
--   its identities creates a new account and access tokens of the account get 401.
-- A second call changes nothing and answers with the first erased_at.
--
-- Lock order follows the rest of the schema: the user's open jobs first (the consumer locks a
-- job, then writes rows pointing at the user), then the user's row.

create function public.erase_account(
  p_user_id uuid,
  p_requested_by text default 'self',
  p_reason text default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_user public.users%rowtype;
  v_erasure private.account_erasures%rowtype;
  v_job public.jobs%rowtype;
  v_now timestamptz := pg_catalog.now();
  v_canceled integer := 0;
  v_stars bigint;
  v_coins bigint;
begin
  if p_user_id is null then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'Erasing an account needs its user id.';
  end if;
  if p_requested_by is null or char_length(p_requested_by) not between 1 and 200 then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'Who asked for the erasure must be 1 to 200 characters.';
  end if;
  if p_reason is not null and char_length(p_reason) > 500 then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'The reason must be at most 500 characters.';
  end if;

  perform 1 from public.jobs j
   where j.user_id = p_user_id and j.status in ('queued', 'processing', 'failed')
     for no key update;
  select u.* into v_user from public.users u where u.id = p_user_id for update;
  if not found then
    raise exception using errcode = 'MV005', message = 'not_found',
      detail = 'There is no such account.';
  end if;

  if v_user.erased_at is not null then
    select e.* into v_erasure from private.account_erasures e where e.user_id = p_user_id;
    return pg_catalog.jsonb_build_object(
      'deleted', true, 'erased_at', v_user.erased_at, 'already_erased', true,
      'refunded_jobs', coalesce(v_erasure.refunded_jobs, 0),
      'forfeited_stars', coalesce(v_erasure.forfeited_stars, 0),
      'forfeited_coins', coalesce(v_erasure.forfeited_coins, 0));
  end if;

  -- Jobs created after the first lock (the creator held the user's row) are open here too.
  for v_job in
    select j.* from public.jobs j
     where j.user_id = p_user_id and j.status in ('queued', 'processing', 'failed')
       for no key update
  loop
    perform private.refund_reading_job(v_job, 'account_erased');
    v_canceled := v_canceled + 1;
  end loop;
  update public.jobs j
     set status = 'canceled', completed_at = v_now, next_retry_at = null, worker_id = null,
         last_error = 'Canceled: the account was deleted.', last_error_at = v_now
   where j.user_id = p_user_id and j.status in ('queued', 'processing', 'failed');
  update public.job_attempts a
     set finished_at = greatest(v_now, a.started_at), success = false,
         error_code = 'account_erased'
   where a.finished_at is null
     and a.job_id in (select j.id from public.jobs j where j.user_id = p_user_id);
  update public.job_attempts a set error = null
   where a.error is not null
     and a.job_id in (select j.id from public.jobs j where j.user_id = p_user_id);
  update public.jobs j
     set payload = pg_catalog.jsonb_build_object('erased', true), result = null,
         last_error = case when j.last_error_at = v_now then j.last_error end
   where j.user_id = p_user_id;

  -- Readings a ledger row points at keep their row without any text; the rest go.
  delete from public.tarot_readings r
   where r.user_id = p_user_id
     and not exists (select 1 from public.wallet_transactions t where t.related_reading_id = r.id);
  update public.tarot_readings r
     set question = '-', question_analysis = null, tarot_reading = '{}'::jsonb, metadata = null
   where r.user_id = p_user_id;

  delete from public.user_identities i where i.user_id = p_user_id;
  delete from public.user_payment_methods m where m.user_id = p_user_id;
  delete from private.payment_method_setups s where s.user_id = p_user_id;

  select u.star_balance, u.coin_balance into v_stars, v_coins
    from public.users u where u.id = p_user_id;
  if v_stars > 0 then
    perform private.apply_wallet_change(
      p_user_id, 'STAR', -v_stars, 'forfeit', 'forfeit:' || p_user_id::text || ':STAR',
      pg_catalog.jsonb_build_object('reason', 'account_erased'));
  end if;
  if v_coins > 0 then
    perform private.apply_wallet_change(
      p_user_id, 'COIN', -v_coins, 'forfeit', 'forfeit:' || p_user_id::text || ':COIN',
      pg_catalog.jsonb_build_object('reason', 'account_erased'));
  end if;

  update public.users u
     set email = null, name = null, picture_url = null, external_provider = 'erased',
         external_id = u.id::text, erased_at = v_now
   where u.id = p_user_id;

  insert into private.account_erasures (
    user_id, erased_at, requested_by, reason, refunded_jobs, forfeited_stars, forfeited_coins
  ) values (p_user_id, v_now, p_requested_by, p_reason, v_canceled, v_stars, v_coins);

  return pg_catalog.jsonb_build_object(
    'deleted', true, 'erased_at', v_now, 'already_erased', false,
    'refunded_jobs', v_canceled, 'forfeited_stars', v_stars, 'forfeited_coins', v_coins);
end
$$;

-- The cleanups due: erased accounts whose Stripe and Redis work is not done and not being
-- retried right now. Each one handed out is leased for five minutes (a concurrent sweep skips
-- it); finish_account_cleanup records the outcome.
create function public.account_cleanups_due(p_limit integer default 20)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_out jsonb;
begin
  with due as (
    select e.user_id from private.account_erasures e
     where e.cleanup_done_at is null and e.next_cleanup_at <= pg_catalog.now()
     order by e.next_cleanup_at
     limit greatest(coalesce(p_limit, 20), 1)
       for update skip locked
  ), leased as (
    update private.account_erasures e
       set next_cleanup_at = pg_catalog.now() + interval '5 minutes'
      from due where e.user_id = due.user_id
    returning e.user_id
  )
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'user_id', l.user_id, 'stripe_customer_id', c.stripe_customer_id)), '[]'::jsonb)
    into v_out
    from leased l left join public.stripe_customers c on c.user_id = l.user_id;
  return v_out;
end
$$;

-- The outcome of one cleanup. Done: the Customer that was deleted at Stripe and the card rows
-- are dropped and the erasure is marked clean (unless another Customer was recorded meanwhile,
-- which keeps it due). Failed: retried with a growing delay (30 s doubling, at most an hour).
create function public.finish_account_cleanup(
  p_user_id uuid,
  p_stripe_customer_id text default null,
  p_error text default null
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_erasure private.account_erasures%rowtype;
begin
  select e.* into v_erasure from private.account_erasures e
   where e.user_id = p_user_id for update;
  if not found then
    raise exception using errcode = 'MV005', message = 'not_found',
      detail = 'This account has not been erased.';
  end if;
  if p_error is not null then
    update private.account_erasures e
       set cleanup_attempts = e.cleanup_attempts + 1,
           cleanup_error = left(p_error, 500),
           next_cleanup_at = pg_catalog.now() + pg_catalog.make_interval(
             secs => least(3600, 30 * power(2, least(e.cleanup_attempts, 7))))
     where e.user_id = p_user_id
    returning * into v_erasure;
    return pg_catalog.jsonb_build_object('done', false, 'attempts', v_erasure.cleanup_attempts);
  end if;
  delete from public.user_payment_methods m where m.user_id = p_user_id;
  delete from public.stripe_customers c
   where c.user_id = p_user_id
     and c.stripe_customer_id is not distinct from p_stripe_customer_id;
  if exists (select 1 from public.stripe_customers c where c.user_id = p_user_id) then
    update private.account_erasures e
       set next_cleanup_at = pg_catalog.now(), cleanup_error = null
     where e.user_id = p_user_id;
    return pg_catalog.jsonb_build_object('done', false, 'attempts', v_erasure.cleanup_attempts);
  end if;
  update private.account_erasures e
     set cleanup_done_at = pg_catalog.now(), cleanup_error = null
   where e.user_id = p_user_id;
  return pg_catalog.jsonb_build_object('done', true, 'attempts', v_erasure.cleanup_attempts);
end
$$;

revoke all on function public.erase_account(uuid, text, text) from public, anon, authenticated;
revoke all on function public.account_cleanups_due(integer) from public, anon, authenticated;
revoke all on function public.finish_account_cleanup(uuid, text, text)
  from public, anon, authenticated;
grant execute on function public.erase_account(uuid, text, text) to service_role;
grant execute on function public.account_cleanups_due(integer) to service_role;
grant execute on function public.finish_account_cleanup(uuid, text, text) to service_role;
