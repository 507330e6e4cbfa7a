-- Account deletion anonymises in place instead of deleting rows: payments, the ledger and
-- invites point at the user, and they must stay for accounting (docs/account.md). The
-- users row stays, emptied of personal data and marked erased_at; every SQL function that
-- moves money sees the mark (private.apply_wallet_change), and so do sign-in and the access
-- token check.

alter table public.users add column erased_at timestamptz;

-- An erased account holds no personal data and no balance (what was left is forfeited on the
-- ledger first).
alter table public.users add constraint users_erased_is_anonymous check (
  erased_at is null
  or (email is null and name is null and picture_url is null and external_provider = 'erased')
);

alter table public.wallet_transactions add constraint wallet_transactions_forfeit_debits
  check (transaction_type <> 'forfeit' or amount < 0);

-- Financial records never disappear with a user row: a delete of a user with payments or sent
-- invites is refused instead of cascading (the ledger already restricts).
alter table public.payments drop constraint payments_user_id_fkey,
  add constraint payments_user_id_fkey foreign key (user_id)
    references public.users (id) on delete restrict;
alter table public.user_invites drop constraint user_invites_inviter_id_fkey,
  add constraint user_invites_inviter_id_fkey foreign key (inviter_id)
    references public.users (id) on delete restrict;

-- One row per erased account: who asked, what was refunded and forfeited, and the state of the
-- work done after commit at Stripe (saved cards detached, the Customer deleted) and in Redis
-- (the user's keys dropped). The request path tries that work once; the job consumer's sweep
-- retries what is due until it is done. No personal data is kept here.
create table private.account_erasures (
  user_id uuid primary key references public.users (id) on delete restrict,
  erased_at timestamptz not null default now(),
  requested_by text not null check (char_length(requested_by) between 1 and 200),
  reason text check (reason is null or char_length(reason) <= 500),
  refunded_jobs integer not null default 0 check (refunded_jobs >= 0),
  forfeited_stars bigint not null default 0 check (forfeited_stars >= 0),
  forfeited_coins bigint not null default 0 check (forfeited_coins >= 0),
  cleanup_done_at timestamptz,
  cleanup_attempts integer not null default 0 check (cleanup_attempts >= 0),
  cleanup_error text check (cleanup_error is null or char_length(cleanup_error) <= 500),
  next_cleanup_at timestamptz not null default now()
);

create index account_erasures_cleanup_due_idx on private.account_erasures (next_cleanup_at)
  where cleanup_done_at is null;

revoke all on table private.account_erasures from public, anon, authenticated, service_role;

-- A Stripe Customer or card recorded for an erased account after its erasure (a purchase or a
-- webhook that raced the deletion) reopens the cleanup, so the sweep removes it too.
create function private.reopen_account_cleanup()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update private.account_erasures e
     set cleanup_done_at = null, next_cleanup_at = pg_catalog.now()
   where e.user_id = new.user_id and e.cleanup_done_at is not null;
  return null;
end
$$;

revoke all on function private.reopen_account_cleanup() from public, anon, authenticated;

create trigger stripe_customers_reopen_account_cleanup
  after insert or update on public.stripe_customers
  for each row execute function private.reopen_account_cleanup();
create trigger user_payment_methods_reopen_account_cleanup
  after insert or update on public.user_payment_methods
  for each row execute function private.reopen_account_cleanup();
