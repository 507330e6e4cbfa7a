-- Sign-in and erased accounts: an identity whose account was erased signs in as a new, empty
-- account, also when the erasure commits while the sign-in waits; a verified email never links
-- to an erased account. Otherwise unchanged (see 20261127000100_create_upsert_user_function).

create or replace function public.upsert_user_from_identity(
  p_provider text,
  p_external_id text,
  p_email text default null,
  p_email_verified boolean default false,
  p_name text default null,
  p_picture_url text default null,
  p_fallback_name text default null,
  p_fallback_picture_url text default null
)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_email text := nullif(btrim(p_email), '');
  v_verified boolean := coalesce(p_email_verified, false);
  v_name text := left(nullif(btrim(coalesce(p_name, '')), ''), 255);
  v_picture text := left(nullif(btrim(coalesce(p_picture_url, '')), ''), 2048);
  v_fallback_name text := left(nullif(btrim(coalesce(p_fallback_name, '')), ''), 255);
  v_fallback_picture text := left(nullif(btrim(coalesce(p_fallback_picture_url, '')), ''), 2048);
  v_user_id uuid;
  v_owner_id uuid;
  v_created boolean := false;
  v_linked boolean := false;
  v_user public.users%rowtype;
begin
  if p_provider is null or p_provider not in ('clerk', 'auth0', 'firebase', 'custom') then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'The identity provider is not one of clerk, auth0, firebase or custom.';
  end if;
  if p_external_id is null or char_length(p_external_id) not between 1 and 255 then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'The external id must be 1 to 255 characters long.';
  end if;
  if v_email is not null and char_length(v_email) not between 3 and 320 then
    v_email := null;
  end if;
  if v_email is null then
    v_verified := false;
  end if;

  perform pg_catalog.pg_advisory_xact_lock(
    pg_catalog.hashtextextended('identity:' || p_provider || ':' || p_external_id, 0)
  );
  if v_email is not null then
    perform pg_catalog.pg_advisory_xact_lock(
      pg_catalog.hashtextextended('email:' || pg_catalog.lower(v_email), 0)
    );
    select u.id into v_owner_id
      from public.users u
     where pg_catalog.lower(u.email) = pg_catalog.lower(v_email);
  end if;

  select i.user_id into v_user_id
    from public.user_identities i
   where i.provider = p_provider and i.external_id = p_external_id;

  -- The account is locked before it is touched. An erased one is no account: its identities
  -- are deleted by the erasure, which may have committed while this sign-in waited for the
  -- lock, and the sign-in goes on as a first one (a new, empty account).
  if v_user_id is not null then
    perform 1 from public.users u
     where u.id = v_user_id and u.erased_at is null
       for no key update;
    if not found then
      v_user_id := null;
      -- Normally gone with the erasure already; never let a leftover block the new account.
      delete from public.user_identities i
       where i.provider = p_provider and i.external_id = p_external_id;
    end if;
  end if;

  if v_user_id is null then
    if v_owner_id is not null then
      perform 1 from public.users u
       where u.id = v_owner_id and u.erased_at is null
         for no key update;
      if not found then
        v_owner_id := null;
      end if;
    end if;
    if v_owner_id is not null then
      if not v_verified then
        raise exception using errcode = 'MV020', message = 'email_conflict',
          detail = 'This email belongs to another account and is not verified by the provider.';
      end if;
      v_user_id := v_owner_id;
      v_linked := true;
    else
      insert into public.users (external_provider, external_id, email, name, picture_url)
      values (
        p_provider,
        p_external_id,
        case when v_verified then v_email end,
        coalesce(v_name, v_fallback_name),
        coalesce(v_picture, v_fallback_picture)
      )
      returning id into v_user_id;
      v_created := true;
    end if;

    insert into public.user_identities (user_id, provider, external_id, email, email_verified)
    values (v_user_id, p_provider, p_external_id, v_email, v_verified);
  else
    update public.user_identities i
       set email = v_email, email_verified = v_verified, last_login_at = pg_catalog.now()
     where i.provider = p_provider and i.external_id = p_external_id;
  end if;

  -- Refresh the profile and the login time; take the verified email when nobody else has it.
  update public.users u
     set last_login_at = pg_catalog.now(),
         name = coalesce(v_name, u.name, v_fallback_name),
         picture_url = coalesce(v_picture, u.picture_url, v_fallback_picture),
         email = case
                   when v_verified and (v_owner_id is null or v_owner_id = u.id) then v_email
                   else u.email
                 end
   where u.id = v_user_id
  returning * into v_user;

  return pg_catalog.jsonb_build_object(
    'created', v_created,
    'linked', v_linked,
    'user', pg_catalog.jsonb_build_object(
      'id', v_user.id,
      'email', v_user.email,
      'name', v_user.name,
      'picture_url', v_user.picture_url,
      'star_balance', v_user.star_balance,
      'coin_balance', v_user.coin_balance,
      'invite_code', v_user.invite_code,
      'tier', v_user.tier,
      'total_invites', v_user.total_invites,
      'invited_by', v_user.invited_by,
      'created_at', v_user.created_at
    )
  );
end
$$;

revoke all on function public.upsert_user_from_identity(
  text, text, text, boolean, text, text, text, text
) from public, anon, authenticated;
grant execute on function public.upsert_user_from_identity(
  text, text, text, boolean, text, text, text, text
) to service_role;
