-- private.qualify_invite counts the inviter's accepted invites from users.total_invites, read
-- under the inviter's row lock it already takes, instead of counting the inviter's accepted
-- invite rows (an inviter with a thousand invites read a thousand rows per qualifying payment).
-- total_invites is written only here, under that lock, as the number of accepted invites; a
-- test ties the two. Everything else is unchanged.

create or replace function private.qualify_invite(p_invitee_id uuid, p_payment_id uuid)
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

  -- The inviter's accepted invites, read from the counter this function keeps under the
  -- inviter's row lock (the only place an invite becomes accepted), so it cannot change
  -- underneath us and no invite row is read.
  select u.total_invites + 1 into strict v_accepted
    from public.users u where u.id = v_invite.inviter_id for no key update;

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
