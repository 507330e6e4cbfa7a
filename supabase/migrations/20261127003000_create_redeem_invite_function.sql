-- redeem-invite: link a user to an inviter's code, once.
--
-- Granted to service_role alone, so the user comes from a parameter: the function URL verifies
-- the access token and applies the rate limit before calling. (Granting it to authenticated
-- would let the app call it over REST and skip the rate limit that slows down code guessing.)
-- Owner's rights because invited_by may be written by no API role.
--
-- Rules, checked in this order (errors as API.md): the user has not redeemed a code before
-- (MV011 already_invited), signed up no more than pricing_settings.invite_window_days ago
-- (MV013 invite_window_closed), the code belongs to a user (MV010 invite_not_found), that user
-- is someone else (MV012 self_invite), and the link would not close a cycle of invitations
-- (MV014 invite_cycle). The result is a pending invite that expires after
-- pricing_settings.invite_expiry_days (the column default), and users.invited_by is set.
--
-- Concurrency: the invitee's users row is locked first, so two redemptions by one user run one
-- after the other and the second sees the first. A cycle can also be closed by two different
-- users redeeming each other's codes at once, which no single row lock can see; one
-- transaction-scoped advisory lock over the invite graph serialises the cycle check and the new
-- link. Redemptions happen once per user, so this lock is short and rarely contended.

create function public.redeem_invite(p_user_id uuid, p_invite_code text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  -- Codes are upper case without separators; accept what people type or paste.
  v_code text := pg_catalog.upper(
    pg_catalog.regexp_replace(coalesce(p_invite_code, ''), '[[:space:]-]', '', 'g')
  );
  v_invitee public.users%rowtype;
  v_inviter_id uuid;
  v_window_days integer;
  v_invite public.user_invites%rowtype;
begin
  if p_user_id is null then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'A user is required to redeem an invite code.';
  end if;

  select u.* into v_invitee from public.users u where u.id = p_user_id for no key update;
  if not found then
    raise exception using errcode = 'MV005', message = 'not_found',
      detail = 'The user does not exist.';
  end if;

  if v_invitee.invited_by is not null
     or exists (select 1 from public.user_invites i where i.invitee_id = p_user_id) then
    raise exception using errcode = 'MV011', message = 'already_invited',
      detail = 'You have already redeemed an invite code.';
  end if;

  select s.invite_window_days into strict v_window_days from public.pricing_settings s;
  if v_invitee.created_at < now() - pg_catalog.make_interval(days => v_window_days) then
    raise exception using errcode = 'MV013', message = 'invite_window_closed',
      detail = format('Invite codes can be redeemed only within %s days of signing up.',
                      v_window_days);
  end if;

  select u.id into v_inviter_id from public.users u where u.invite_code = v_code;
  if not found then
    raise exception using errcode = 'MV010', message = 'invite_not_found',
      detail = 'No user has this invite code.';
  end if;

  if v_inviter_id = p_user_id then
    raise exception using errcode = 'MV012', message = 'self_invite',
      detail = 'You cannot redeem your own invite code.';
  end if;

  perform pg_catalog.pg_advisory_xact_lock(
    pg_catalog.hashtextextended('mimivibe:invite-graph', 0)
  );
  -- Walk up from the inviter through invited_by; reaching the invitee means a cycle. UNION
  -- (not UNION ALL) ends the walk even on data that already has a cycle.
  if exists (
    with recursive chain (id) as (
      select v_inviter_id
      union
      select u.invited_by
        from public.users u
        join chain c on u.id = c.id
       where u.invited_by is not null
    )
    select 1 from chain where chain.id = p_user_id
  ) then
    raise exception using errcode = 'MV014', message = 'invite_cycle',
      detail = 'This invite code would create an invite cycle.';
  end if;

  insert into public.user_invites (inviter_id, invitee_id, invite_code)
  values (v_inviter_id, p_user_id, v_code)
  returning * into v_invite;

  update public.users u set invited_by = v_inviter_id where u.id = p_user_id;

  return jsonb_build_object(
    'invite_id', v_invite.id,
    'status', v_invite.status,
    'inviter_id', v_invite.inviter_id,
    'invite_code', v_invite.invite_code,
    'expires_at', v_invite.expires_at
  );
end
$$;

revoke all on function public.redeem_invite(uuid, text) from public, anon, authenticated;
grant execute on function public.redeem_invite(uuid, text) to service_role;
