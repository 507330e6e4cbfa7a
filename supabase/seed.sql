-- Demo data for trying the app on the local stack: `make seed` (or `supabase db reset` with the
-- CLI, which loads this file after the migrations). Never part of a migration, never pushed:
-- `supabase db push` does not load seeds, and this file refuses a database that has users of
-- its own.
--
-- Everything goes through the project's SQL functions, as the functions would call them, so the
-- ledger holds: after seeding `select * from public.wallet_audit()` returns no row. Loaded
-- twice, it changes nothing the second time. A database that already has users is seeded only
-- through `make seed` (which sets `mimivibe.seed` and loads only into a database on this machine).
--
-- Sign in as any demo user with the local identity provider (`custom` provider, the user's
-- `sub`), e.g. `{"sub": "demo-gold-1", "email": "demo-gold-1@demo.mimivibe.test",
-- "email_verified": true}`:
--   demo-gold-1, demo-gold-2       gold tier (16 accepted invites each), Thai readings
--   demo-silver-1, demo-silver-2   silver tier (6 accepted invites each), English readings
--   demo-bronze-1                  bronze, one accepted and one pending invite, a failed and a
--                                  pending payment
--   demo-bronze-2                  bronze, just signed up: no stars, no readings
--   demo-invitee-*                 the friends who redeemed the codes above and bought stars

do $seed$
begin
  if exists (select 1 from public.payments p where p.idempotency_key = 'demo-gold-1-premium') then
    raise notice 'the demo data is already there; nothing seeded';
    return;
  end if;
  if coalesce(current_setting('mimivibe.seed', true), '') <> 'local'
     and exists (select 1 from public.users u where u.external_id not like 'demo-%') then
    raise exception 'seed.sql loads demo users into an empty database; '
                    'on the local stack use `make seed`';
  end if;
end
$seed$;

-- Helpers for this session only (pg_temp): sign a user up, buy a package, read the cards.
create function pg_temp.demo_user(p_sub text, p_name text)
returns uuid language sql as $$
  select (public.upsert_user_from_identity(
    'custom', p_sub, p_sub || '@demo.mimivibe.test', true, p_name) -> 'user' ->> 'id')::uuid
$$;

create function pg_temp.demo_purchase(p_user uuid, p_package text, p_key text,
                                      p_outcome text default 'succeeded')
returns uuid language plpgsql as $$
declare
  v_payment uuid;
  v_intent text := 'pi_demo_' || replace(p_key, '-', '_');
begin
  v_payment := (public.begin_purchase(p_user, p_package, p_key, 'seed') ->> 'id')::uuid;
  if p_outcome = 'pending' then
    return v_payment;
  end if;
  perform public.record_payment_intent(v_payment, v_intent);
  perform public.apply_stripe_event(
    'evt_demo_' || replace(p_key, '-', '_'),
    case p_outcome when 'succeeded' then 'payment_intent.succeeded'
                   else 'payment_intent.payment_failed' end,
    jsonb_build_object('id', v_intent, 'object', 'payment_intent',
                       'latest_charge', 'ch_demo_' || replace(p_key, '-', '_'),
                       'metadata', jsonb_build_object('payment_id', v_payment),
                       'last_payment_error', case when p_outcome = 'failed' then jsonb_build_object(
                         'code', 'card_declined', 'decline_code', 'insufficient_funds',
                         'message', 'Your card has insufficient funds.') end));
  return v_payment;
end
$$;

-- A reading as the job consumer would store it: the job charged and its cards drawn by
-- create_reading_job, then claimed and finished with a written reading.
create function pg_temp.demo_reading(p_user uuid, p_key text, p_question text, p_cards integer,
                                     p_locale text, p_summary text, p_advice text)
returns void language plpgsql as $$
declare
  v_job uuid;
  v_claim jsonb;
  v_cards jsonb;
  v_positions text[];
begin
  v_job := (public.create_reading_job(p_user, p_key, 'seed', p_question, p_cards, p_locale)
            ->> 'job_id')::uuid;
  v_claim := public.claim_reading_jobs(array[v_job], 'seed') -> 0;
  v_positions := case
    when p_cards = 3 and p_locale = 'th' then array['อดีต', 'ปัจจุบัน', 'อนาคต']
    when p_cards = 3 then array['Past', 'Present', 'Future']
    when p_locale = 'th' then array['สถานการณ์ปัจจุบัน', 'อุปสรรค', 'รากฐานจากอดีต', 'คำแนะนำ',
                                    'ผลลัพธ์ที่น่าจะเป็น']
    else array['Present situation', 'Challenge', 'Root in the past', 'Advice', 'Likely outcome']
  end;
  select jsonb_agg(jsonb_build_object(
           'position', (c ->> 'position')::integer,
           'position_name', v_positions[(c ->> 'position')::integer + 1],
           'card_id', c ->> 'card_id',
           'name', case when p_locale = 'th' then t.name_th else t.name_en end,
           'orientation', c ->> 'orientation',
           'interpretation', case
             when p_locale = 'th' then format('ไพ่%s%sในตำแหน่ง%s ชวนให้คุณทบทวนเรื่องนี้อย่างใจเย็น',
               t.name_th, case when c ->> 'orientation' = 'reversed' then ' (กลับหัว) ' else ' ' end,
               v_positions[(c ->> 'position')::integer + 1])
             else format('%s%s in the %s position asks you to look at this calmly.',
               t.name_en, case when c ->> 'orientation' = 'reversed' then ' reversed' else '' end,
               lower(v_positions[(c ->> 'position')::integer + 1]))
           end) order by (c ->> 'position')::integer)
    into v_cards
    from jsonb_array_elements(v_claim -> 'payload' -> 'cards') c
    join public.tarot_cards t on t.id = c ->> 'card_id';
  perform public.finish_reading_jobs(jsonb_build_array(jsonb_build_object(
    'job_id', v_job, 'attempt', (v_claim ->> 'attempt')::integer, 'kind', 'reading',
    'question_analysis', jsonb_build_object('topic', 'general', 'intent', 'advice',
                                            'time_frame', 'near_future', 'keywords', '[]'::jsonb),
    'tarot_reading', jsonb_build_object('cards', v_cards, 'summary', p_summary,
                                        'advice', p_advice),
    'processing_time_ms', 1200, 'prompt_version', 'seed', 'schema_version', '1')));
end
$$;

-- An inviter with `p_count` friends who redeemed the code and paid (accepted, rewarded).
create function pg_temp.demo_invitees(p_inviter uuid, p_label text, p_count integer)
returns void language plpgsql as $$
declare
  v_code text := (select u.invite_code from public.users u where u.id = p_inviter);
  v_friend uuid;
begin
  for i in 1 .. p_count loop
    v_friend := pg_temp.demo_user(format('demo-invitee-%s-%s', p_label, lpad(i::text, 2, '0')),
                                  format('Friend %s of %s', i, p_label));
    perform public.redeem_invite(v_friend, v_code);
    perform pg_temp.demo_purchase(v_friend, 'starter',
                                  format('demo-%s-friend-%s', p_label, i));
  end loop;
end
$$;

do $seed$
declare
  v_gold1 uuid;
  v_gold2 uuid;
  v_silver1 uuid;
  v_silver2 uuid;
  v_bronze1 uuid;
  v_bronze2 uuid;
  v_pending_friend uuid;
begin
  if exists (select 1 from public.payments p where p.idempotency_key = 'demo-gold-1-premium') then
    return;  -- said above
  end if;

  v_gold1 := pg_temp.demo_user('demo-gold-1', 'มะลิ ศรีสุข');
  v_gold2 := pg_temp.demo_user('demo-gold-2', 'ก้องภพ ใจดี');
  v_silver1 := pg_temp.demo_user('demo-silver-1', 'Alice Walker');
  v_silver2 := pg_temp.demo_user('demo-silver-2', 'Ben Carter');
  v_bronze1 := pg_temp.demo_user('demo-bronze-1', 'นภา รุ่งเรือง');
  v_bronze2 := pg_temp.demo_user('demo-bronze-2', 'Chris Newman');

  -- Stars: one package each (the webhook's success credits them).
  perform pg_temp.demo_purchase(v_gold1, 'premium', 'demo-gold-1-premium');
  perform pg_temp.demo_purchase(v_gold2, 'basic', 'demo-gold-2-basic');
  perform pg_temp.demo_purchase(v_silver1, 'premium', 'demo-silver-1-premium');
  perform pg_temp.demo_purchase(v_silver2, 'starter', 'demo-silver-2-starter');
  perform pg_temp.demo_purchase(v_bronze1, 'starter', 'demo-bronze-1-starter');
  perform pg_temp.demo_purchase(v_bronze1, 'basic', 'demo-bronze-1-declined', 'failed');
  perform pg_temp.demo_purchase(v_bronze1, 'premium', 'demo-bronze-1-pending', 'pending');

  -- Tiers: accepted invites pay the inviter coins at the tier's rate.
  perform pg_temp.demo_invitees(v_gold1, 'gold-1', 16);
  perform pg_temp.demo_invitees(v_gold2, 'gold-2', 16);
  perform pg_temp.demo_invitees(v_silver1, 'silver-1', 6);
  perform pg_temp.demo_invitees(v_silver2, 'silver-2', 6);
  perform pg_temp.demo_invitees(v_bronze1, 'bronze-1', 1);
  -- A friend who redeemed but has not paid yet: the invite stays pending.
  v_pending_friend := pg_temp.demo_user('demo-invitee-bronze-1-pending', 'Friend in waiting');
  perform public.redeem_invite(v_pending_friend,
                               (select u.invite_code from public.users u where u.id = v_bronze1));

  -- Coins to stars, as the app's exchange_coins RPC does for the signed-in user.
  perform set_config('request.jwt.claims',
                     jsonb_build_object('sub', v_gold1, 'role', 'authenticated')::text, true);
  perform public.exchange_coins(500, 'demo-gold-1-exchange');
  perform set_config('request.jwt.claims', '', true);

  -- Readings in Thai and in English.
  perform pg_temp.demo_reading(v_gold1, 'demo-gold-1-love', 'ความรักของฉันในปีนี้จะเป็นอย่างไร', 3,
    'th', 'ความรักกำลังค่อย ๆ เติบโตจากความเข้าใจที่มากขึ้น',
    'เปิดใจพูดคุยอย่างจริงใจ แล้วให้เวลากับความสัมพันธ์');
  perform pg_temp.demo_reading(v_gold1, 'demo-gold-1-work', 'ควรเปลี่ยนงานใหม่ไหม', 5, 'th',
    'ช่วงนี้เป็นจังหวะของการเตรียมตัว มากกว่าการตัดสินใจทันที',
    'เก็บข้อมูลและพัฒนาทักษะ แล้วตัดสินใจเมื่อพร้อม');
  perform pg_temp.demo_reading(v_gold2, 'demo-gold-2-money', 'การเงินเดือนหน้าจะดีขึ้นหรือไม่', 3,
    'th', 'การเงินเริ่มมั่นคงขึ้นหากวางแผนรายจ่ายให้ชัดเจน',
    'ทำบัญชีรายรับรายจ่าย และกันเงินสำรองไว้ส่วนหนึ่ง');
  perform pg_temp.demo_reading(v_silver1, 'demo-silver-1-career',
    'Will my new project at work succeed?', 5, 'en',
    'The project has strong foundations; patience with the team will carry it.',
    'Share the credit and ask for help early.');
  perform pg_temp.demo_reading(v_silver1, 'demo-silver-1-health',
    'How can I find more balance this month?', 3, 'en',
    'Rest is the missing piece of your routine.',
    'Guard one evening a week for yourself.');
  perform pg_temp.demo_reading(v_silver2, 'demo-silver-2-love', 'Is this relationship right for me?',
    3, 'en', 'The bond is real, and it asks for honesty from both of you.',
    'Say what you need plainly.');
  perform pg_temp.demo_reading(v_bronze1, 'demo-bronze-1-general', 'สัปดาห์นี้ควรระวังเรื่องอะไร', 3,
    'th', 'ระวังการตัดสินใจด้วยอารมณ์ชั่ววูบ', 'หายใจลึก ๆ และคิดก่อนพูด');

  if exists (select 1 from public.wallet_audit()) then
    raise exception 'the seeded ledger does not balance: %',
      (select jsonb_agg(to_jsonb(a)) from public.wallet_audit() a);
  end if;
end
$seed$;

drop function pg_temp.demo_invitees(uuid, text, integer);
drop function pg_temp.demo_reading(uuid, text, text, integer, text, text, text);
drop function pg_temp.demo_purchase(uuid, text, text, text);
drop function pg_temp.demo_user(text, text);
