-- Qualification: the invitee's first payment to succeed while their invite is pending accepts
-- the invite and rewards the inviter.
--
-- Called by the payment-success SQL inside the transaction that credits the invitee's stars
-- (`perform private.qualify_invite(<invitee>, <payment>)`), once per payment, when it settles, so
-- the reward commits or rolls back with the stars. Returns the invite's id when this call
-- accepted it, otherwise NULL: no invite, already accepted (a later payment or a replayed
-- webhook), or expired.
--
-- Which payment qualifies (DESIGN.md: accepted "when the invitee's first Stripe payment
-- succeeds"), decided so that the outcome follows what happened at Stripe, not the order or
-- timing of the webhooks:
-- * A refund or lost dispute that arrives before the success still means the payment
--   succeeded (Stripe only reverses a charge that succeeded; settle_payment settles it before
--   clawing back). It qualifies exactly as when the success arrives first and the refund
--   later: the inviter is rewarded once, and a reversal neither pays the reward again nor
--   takes it back.
-- * A payment that succeeded before the code was redeemed had no invite to qualify. The
--   invitee's next successful payment while the invite is pending does, so a pending invite
--   always means "waiting for the invitee's payment" until it expires; the 7-day sign-up
--   window already limits who can be invited.
--
-- In one transaction: the invite becomes accepted with its reward recorded
-- (is_reward_claimed), the inviter's total_invites (accepted invites) and tier follow the new
-- count, and the coins are credited through the wallet core with dedupe key
-- 'invite:<invite id>'. The reward is pricing_settings.invite_reward_coins times the multiplier
-- of the tier the new count reaches (tier_bonuses): the invite that moves an inviter up
-- already earns the new tier's rate.
--
-- Concurrency: the invite row is locked first (duplicate webhooks, the expiry sweep), then the
-- inviter's row (counters, wallet). Invitations form no cycles, so these row locks cannot
-- deadlock with the inviter's own payment.

create function private.qualify_invite(p_invitee_id uuid, p_payment_id uuid)
returns uuid
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_invite public.user_invites%rowtype;
  v_accepted integer;
  v_tier public.user_tier;
  v_multiplier numeric;
  v_base integer;
  v_reward bigint;
begin
  if p_invitee_id is null or p_payment_id is null then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'Qualifying an invite needs the invitee and the payment.';
  end if;
  if not exists (
    select 1 from public.payments p where p.id = p_payment_id and p.user_id = p_invitee_id
  ) then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = format('Payment %s is not a payment of user %s.', p_payment_id, p_invitee_id);
  end if;

  select i.* into v_invite
    from public.user_invites i
   where i.invitee_id = p_invitee_id
     for update;
  if not found or v_invite.status <> 'pending' then
    return null;
  end if;

  if v_invite.expires_at <= now() then
    -- The sweep has not run yet; an expired invite never pays.
    update public.user_invites i set status = 'expired' where i.id = v_invite.id;
    return null;
  end if;

  -- Under the inviter's row lock the count of accepted invites cannot change underneath us.
  perform 1 from public.users u where u.id = v_invite.inviter_id for no key update;
  select count(*) + 1 into v_accepted
    from public.user_invites i
   where i.inviter_id = v_invite.inviter_id and i.status = 'accepted';

  select t.tier, t.multiplier into strict v_tier, v_multiplier
    from public.tier_bonuses t
   where t.min_accepted_invites <= v_accepted
   order by t.min_accepted_invites desc
   limit 1;
  select s.invite_reward_coins into strict v_base from public.pricing_settings s;
  v_reward := round(v_base * v_multiplier)::bigint;

  update public.user_invites i
     set status = 'accepted', accepted_at = now(), coin_reward = v_reward,
         is_reward_claimed = true
   where i.id = v_invite.id;
  update public.users u
     set total_invites = v_accepted, tier = v_tier
   where u.id = v_invite.inviter_id;

  perform private.apply_wallet_change(
    v_invite.inviter_id,
    'COIN'::public.currency,
    v_reward,
    'invite_reward'::public.transaction_type,
    'invite:' || v_invite.id,
    jsonb_build_object(
      'invite_id', v_invite.id,
      'tier', v_tier,
      'multiplier', v_multiplier,
      'accepted_invites', v_accepted
    ),
    p_related_invite_id => v_invite.id
  );
  return v_invite.id;
end
$$;

revoke all on function private.qualify_invite(uuid, uuid) from public, anon, authenticated;
grant execute on function private.qualify_invite(uuid, uuid) to service_role;
