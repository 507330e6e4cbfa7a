-- Star purchases through Stripe, one row per PaymentIntent.

create table public.payments (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,

  -- The client's Idempotency-Key and a hash of its request: a replay returns this row, a
  -- different request under the same key is refused.
  idempotency_key text check (idempotency_key is null or char_length(idempotency_key) between 1 and 255),
  request_hash text,

  stripe_payment_intent_id text unique,
  stripe_charge_id text unique,
  stripe_metadata jsonb,

  amount bigint not null check (amount > 0),  -- satang
  currency text not null default 'THB' check (currency = 'THB'),
  status public.payment_status not null default 'pending',
  package_type text not null references public.star_packages (code),

  stars_purchased integer not null check (stars_purchased > 0),
  stars_bonus integer not null default 0 check (stars_bonus >= 0),
  stars_total integer generated always as (stars_purchased + stars_bonus) stored,

  -- Refunds and disputes claw stars back in proportion; these record how much so far.
  amount_refunded bigint not null default 0,
  stars_clawed_back integer not null default 0,
  disputed boolean not null default false,

  error_code text,
  error_message text,

  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),

  constraint payments_user_idempotency_key unique (user_id, idempotency_key),
  constraint payments_request_hash_with_key check (request_hash is null or idempotency_key is not null),
  constraint payments_amount_refunded_range check (amount_refunded between 0 and amount),
  constraint payments_stars_clawed_back_range check (stars_clawed_back between 0 and stars_purchased + stars_bonus)
);

create index payments_user_created_idx on public.payments (user_id, created_at desc, id desc);
create index payments_status_idx on public.payments (status);
create index payments_package_type_idx on public.payments (package_type);

create trigger payments_set_updated_at before update on public.payments
  for each row execute function private.set_updated_at();

alter table public.payments enable row level security;

revoke all on table public.payments from public, anon, authenticated;
grant select on table public.payments to authenticated;
grant select, insert, update, delete on table public.payments to service_role;

create policy payments_select_own on public.payments
  for select to authenticated
  using (user_id = (select auth.uid()));
