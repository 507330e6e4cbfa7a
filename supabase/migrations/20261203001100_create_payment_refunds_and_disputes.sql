-- Refunds and disputes have a life of their own (Stripe's statuses), one row each, so that a
-- refund that fails after its claw-back, or a dispute that is won, can be undone exactly once.
--
-- payments.payment_method_type: how the customer pays (card through the PaymentSheet or a saved
-- card, or a PromptPay QR). payments.charge_amount_refunded: the highest amount_refunded a
-- charge.refunded event reported, for refunds whose own refund.* events have not arrived.

alter table public.payments
  add column payment_method_type text not null default 'card'
    check (payment_method_type in ('card', 'promptpay')),
  add column charge_amount_refunded bigint not null default 0
    check (charge_amount_refunded >= 0);

create table public.payment_refunds (
  id uuid primary key default gen_random_uuid(),
  payment_id uuid not null references public.payments (id) on delete cascade,
  stripe_refund_id text not null unique check (stripe_refund_id <> ''),
  amount bigint not null check (amount > 0),
  -- Stripe's refund statuses; failed and canceled are final.
  status text not null
    check (status in ('requires_action', 'pending', 'succeeded', 'failed', 'canceled')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index payment_refunds_payment_idx on public.payment_refunds (payment_id);

create trigger payment_refunds_set_updated_at before update on public.payment_refunds
  for each row execute function private.set_updated_at();

create table public.payment_disputes (
  id uuid primary key default gen_random_uuid(),
  payment_id uuid not null references public.payments (id) on delete cascade,
  stripe_dispute_id text not null unique check (stripe_dispute_id <> ''),
  amount bigint not null check (amount > 0),
  -- Stripe's dispute statuses; won, lost and warning_closed are final.
  status text not null check (status in (
    'warning_needs_response', 'warning_under_review', 'warning_closed',
    'needs_response', 'under_review', 'won', 'lost', 'prevented')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index payment_disputes_payment_idx on public.payment_disputes (payment_id);

create trigger payment_disputes_set_updated_at before update on public.payment_disputes
  for each row execute function private.set_updated_at();

alter table public.payment_refunds enable row level security;
alter table public.payment_disputes enable row level security;

revoke all on table public.payment_refunds from public, anon, authenticated;
revoke all on table public.payment_disputes from public, anon, authenticated;
grant select, insert, update, delete on table public.payment_refunds to service_role;
grant select, insert, update, delete on table public.payment_disputes to service_role;
