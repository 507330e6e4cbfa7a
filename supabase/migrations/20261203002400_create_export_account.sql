-- export_account(): everything stored about the caller, as one JSON document (docs/account.md,
-- GET /account/export; Thailand's PDPA right of access).
--
-- Security invoker and granted to authenticated only: it reads as the signed-in user, so the
-- tables' RLS policies decide what is theirs (the same policies that guard the REST API), and
-- no filter here can widen or narrow that. The other party of an invite appears by id only
-- (the invite code of the row belongs to the inviter and is left out); saved cards by brand,
-- last 4 digits and expiry only. The refunds and disputes of the user's payments are read
-- under the policies of 20261203008000_let_users_read_their_refunds_and_disputes.

create function public.export_account()
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_me uuid := (select auth.uid());
begin
  if v_me is null then
    raise exception using errcode = 'MV005', message = 'not_found',
      detail = 'Export needs a signed-in user.';
  end if;
  return pg_catalog.jsonb_build_object(
    'exported_at', pg_catalog.now(),
    'user_id', v_me,
    'profile', (select pg_catalog.to_jsonb(u) from public.users u),
    'identities', coalesce((
      select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'id', i.id, 'provider', i.provider, 'external_id', i.external_id,
               'email', i.email, 'email_verified', i.email_verified,
               'created_at', i.created_at, 'last_login_at', i.last_login_at)
             order by i.created_at, i.id)
        from public.user_identities i), '[]'::jsonb),
    'stripe_customer', (
      select pg_catalog.jsonb_build_object('stripe_customer_id', c.stripe_customer_id,
                                           'created_at', c.created_at)
        from public.stripe_customers c),
    'payments', coalesce((
      select pg_catalog.jsonb_agg(pg_catalog.to_jsonb(p) order by p.created_at, p.id)
        from public.payments p), '[]'::jsonb),
    'refunds', coalesce((
      select pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r) order by r.created_at, r.id)
        from public.payment_refunds r), '[]'::jsonb),
    'disputes', coalesce((
      select pg_catalog.jsonb_agg(pg_catalog.to_jsonb(d) order by d.created_at, d.id)
        from public.payment_disputes d), '[]'::jsonb),
    'ledger', coalesce((
      select pg_catalog.jsonb_agg(pg_catalog.to_jsonb(t) order by t.seq)
        from public.wallet_transactions t), '[]'::jsonb),
    'readings', coalesce((
      select pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r) - 'question_normalized'
                                  order by r.created_at, r.id)
        from public.tarot_readings r), '[]'::jsonb),
    'jobs', coalesce((
      select pg_catalog.jsonb_agg(pg_catalog.to_jsonb(j) order by j.created_at, j.id)
        from public.jobs j), '[]'::jsonb),
    'job_attempts', coalesce((
      select pg_catalog.jsonb_agg(pg_catalog.to_jsonb(a) order by a.job_id, a.attempt_number)
        from public.job_attempts a), '[]'::jsonb),
    'invites', coalesce((
      select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'id', i.id,
               'role', case when i.inviter_id = v_me then 'inviter' else 'invitee' end,
               'inviter_id', i.inviter_id, 'invitee_id', i.invitee_id, 'status', i.status,
               'coin_reward', i.coin_reward, 'is_reward_claimed', i.is_reward_claimed,
               'created_at', i.created_at, 'accepted_at', i.accepted_at,
               'expires_at', i.expires_at)
             order by i.created_at, i.id)
        from public.user_invites i), '[]'::jsonb),
    'saved_cards', coalesce((
      select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'id', m.id, 'type', m.type, 'brand', m.brand, 'last4', m.last4,
               'exp_month', m.exp_month, 'exp_year', m.exp_year,
               'is_default', m.is_default, 'is_active', m.is_active,
               'created_at', m.created_at)
             order by m.created_at, m.id)
        from public.user_payment_methods m), '[]'::jsonb)
  );
end
$$;

revoke all on function public.export_account() from public, anon, authenticated, service_role;
grant execute on function public.export_account() to authenticated;
