-- Prices and rewards live here, once; the server never takes them from a request.
-- Readable by service_role only (SQL functions owned by the migration role read them directly).

create table public.star_packages (
  code text primary key check (code in ('starter', 'basic', 'premium')),
  amount_satang bigint not null check (amount_satang > 0),
  currency text not null default 'THB' check (currency = 'THB'),
  stars integer not null check (stars > 0),
  bonus_stars integer not null default 0 check (bonus_stars >= 0),
  active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table public.reading_prices (
  card_count integer primary key check (card_count in (3, 5)),
  stars integer not null check (stars > 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- Exactly one row: the primary key can only be true.
create table public.pricing_settings (
  id boolean primary key default true check (id),
  coins_per_star integer not null check (coins_per_star > 0),
  invite_reward_coins integer not null check (invite_reward_coins > 0),
  invite_window_days integer not null check (invite_window_days > 0),
  invite_expiry_days integer not null check (invite_expiry_days > 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table public.tier_bonuses (
  tier public.user_tier primary key,
  min_accepted_invites integer not null unique check (min_accepted_invites >= 0),
  multiplier numeric(4, 2) not null check (multiplier >= 1),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

insert into public.star_packages (code, amount_satang, stars, bonus_stars) values
  ('starter', 4900, 5, 0),
  ('basic', 14900, 15, 2),
  ('premium', 29900, 30, 6);

insert into public.reading_prices (card_count, stars) values (3, 1), (5, 2);

insert into public.pricing_settings
  (coins_per_star, invite_reward_coins, invite_window_days, invite_expiry_days)
values (100, 100, 7, 30);

insert into public.tier_bonuses (tier, min_accepted_invites, multiplier) values
  ('bronze', 0, 1.0),
  ('silver', 6, 1.2),
  ('gold', 16, 1.5);

create trigger star_packages_set_updated_at before update on public.star_packages
  for each row execute function private.set_updated_at();
create trigger reading_prices_set_updated_at before update on public.reading_prices
  for each row execute function private.set_updated_at();
create trigger pricing_settings_set_updated_at before update on public.pricing_settings
  for each row execute function private.set_updated_at();
create trigger tier_bonuses_set_updated_at before update on public.tier_bonuses
  for each row execute function private.set_updated_at();

alter table public.star_packages enable row level security;
alter table public.reading_prices enable row level security;
alter table public.pricing_settings enable row level security;
alter table public.tier_bonuses enable row level security;

-- Supabase grants everything on new public tables to anon and authenticated by default.
revoke all on table public.star_packages, public.reading_prices, public.pricing_settings,
  public.tier_bonuses from public, anon, authenticated;
grant select, insert, update, delete on table public.star_packages, public.reading_prices,
  public.pricing_settings, public.tier_bonuses to service_role;
