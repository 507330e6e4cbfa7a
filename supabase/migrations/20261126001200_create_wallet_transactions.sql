-- The ledger. Amounts are signed (credits positive, debits negative, never zero) so that
-- balance = sum(amount) = last balance_after; the design document's CHECK (amount >= 0) made
-- its own balance query meaningless. Rows are written only by private.apply_wallet_change and
-- are immutable for every role.

create table public.wallet_transactions (
  id uuid primary key default gen_random_uuid(),
  -- Commit order per user (the wallet core holds the user's row lock while inserting), which
  -- orders the balance_after chain even within one transaction.
  seq bigint generated always as identity unique,
  user_id uuid not null references public.users (id) on delete restrict,

  transaction_type public.transaction_type not null,
  amount bigint not null check (amount <> 0),
  currency public.currency not null,
  balance_after bigint not null check (balance_after >= 0),

  -- The effect's unique key (purchase:<payment>, reading:<job>, invite:<invite>, ...), written in
  -- the same transaction as the balance change so a replay is a no-op.
  dedupe_key text not null unique check (char_length(dedupe_key) between 1 and 512),
  metadata jsonb not null default '{}'::jsonb,

  -- Restrict, not set null: set null would be an UPDATE of an immutable row.
  related_payment_id uuid references public.payments (id) on delete restrict,
  related_reading_id uuid references public.tarot_readings (id) on delete restrict,
  related_invite_id uuid references public.user_invites (id) on delete restrict,
  related_job_id uuid references public.jobs (id) on delete restrict,

  created_at timestamptz not null default now(),

  -- Direction and currency that each type can only have.
  constraint wallet_transactions_purchase_credits_stars
    check (transaction_type <> 'purchase' or (amount > 0 and currency = 'STAR')),
  constraint wallet_transactions_invite_reward_credits_coins
    check (transaction_type <> 'invite_reward' or (amount > 0 and currency = 'COIN')),
  constraint wallet_transactions_reading_debits_stars
    check (transaction_type <> 'reading' or (amount < 0 and currency = 'STAR')),
  constraint wallet_transactions_dispute_debits
    check (transaction_type <> 'dispute' or amount < 0)
);

create index wallet_transactions_user_created_idx
  on public.wallet_transactions (user_id, created_at desc, id desc);
create index wallet_transactions_user_currency_seq_idx
  on public.wallet_transactions (user_id, currency, seq);
create index wallet_transactions_payment_idx on public.wallet_transactions (related_payment_id)
  where related_payment_id is not null;
create index wallet_transactions_reading_idx on public.wallet_transactions (related_reading_id)
  where related_reading_id is not null;
create index wallet_transactions_invite_idx on public.wallet_transactions (related_invite_id)
  where related_invite_id is not null;
create index wallet_transactions_job_idx on public.wallet_transactions (related_job_id)
  where related_job_id is not null;

create function private.refuse_ledger_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception using
    errcode = '42501',
    message = 'wallet_transactions is append-only',
    detail = format('%s on the ledger is refused for every role; record a new transaction instead.', tg_op);
end
$$;

revoke all on function private.refuse_ledger_change() from public, anon, authenticated;

-- Row triggers cover UPDATE and DELETE (including cascades); TRUNCATE fires no row triggers.
create trigger wallet_transactions_immutable
  before update or delete on public.wallet_transactions
  for each row execute function private.refuse_ledger_change();
create trigger wallet_transactions_no_truncate
  before truncate on public.wallet_transactions
  for each statement execute function private.refuse_ledger_change();

alter table public.wallet_transactions enable row level security;

revoke all on table public.wallet_transactions from public, anon, authenticated, service_role;
grant select on table public.wallet_transactions to authenticated, service_role;

create policy wallet_transactions_select_own on public.wallet_transactions
  for select to authenticated
  using (user_id = (select auth.uid()));

revoke all on sequence public.wallet_transactions_seq_seq
  from public, anon, authenticated, service_role;
