-- Deleting an account forfeits the stars and coins left in it (docs/account.md, DELETE /account). One
-- ledger row per currency takes the balance to zero, so the ledger still explains every cached
-- balance and wallet_audit() stays empty. Its own migration: a new enum value cannot be used in
-- the transaction that adds it.
alter type public.transaction_type add value if not exists 'forfeit';
