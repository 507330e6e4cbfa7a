-- Processed Stripe event ids. A row is inserted in the same transaction as the event's effect,
-- so an event is marked processed exactly when its effect committed.

create table public.stripe_events (
  id text primary key check (id <> ''),
  type text not null,
  created_at timestamptz not null default now(),
  processed_at timestamptz not null default now()
);

create index stripe_events_type_idx on public.stripe_events (type);

alter table public.stripe_events enable row level security;

revoke all on table public.stripe_events from public, anon, authenticated;
grant select, insert, delete on table public.stripe_events to service_role;
