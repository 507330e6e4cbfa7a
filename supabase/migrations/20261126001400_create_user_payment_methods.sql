-- Saved cards (Stripe PaymentMethods; no card data beyond brand, last 4 and expiry).

create table public.user_payment_methods (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,

  stripe_payment_method_id text not null unique,
  stripe_customer_id text,

  type text not null default 'card',
  brand text,
  last4 text check (last4 is null or last4 ~ '^[0-9]{4}$'),
  exp_month integer check (exp_month is null or exp_month between 1 and 12),
  -- No hard-coded year (the design document's CHECK (exp_year > 2025) would reject valid cards
  -- today and accept expired ones later); Stripe reports expiry, the app shows it.
  exp_year integer check (exp_year is null or exp_year between 1000 and 9999),

  is_default boolean not null default false,
  is_active boolean not null default true,

  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),

  constraint user_payment_methods_default_is_active check (not is_default or is_active)
);

create index user_payment_methods_user_idx on public.user_payment_methods (user_id, created_at desc);
-- At most one default card per user.
create unique index user_payment_methods_one_default_idx on public.user_payment_methods (user_id)
  where is_default;

create trigger user_payment_methods_set_updated_at before update on public.user_payment_methods
  for each row execute function private.set_updated_at();

alter table public.user_payment_methods enable row level security;

revoke all on table public.user_payment_methods from public, anon, authenticated;
grant select on table public.user_payment_methods to authenticated;
grant select, insert, update, delete on table public.user_payment_methods to service_role;

create policy user_payment_methods_select_own on public.user_payment_methods
  for select to authenticated
  using (user_id = (select auth.uid()));
