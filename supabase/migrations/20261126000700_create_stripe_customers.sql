-- One Stripe Customer per user, created once.

create table public.stripe_customers (
  user_id uuid primary key references public.users (id) on delete cascade,
  stripe_customer_id text not null unique check (stripe_customer_id <> ''),
  created_at timestamptz not null default now()
);

alter table public.stripe_customers enable row level security;

revoke all on table public.stripe_customers from public, anon, authenticated;
grant select on table public.stripe_customers to authenticated;
grant select, insert, update, delete on table public.stripe_customers to service_role;

create policy stripe_customers_select_own on public.stripe_customers
  for select to authenticated
  using (user_id = (select auth.uid()));
