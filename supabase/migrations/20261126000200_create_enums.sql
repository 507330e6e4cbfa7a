-- Enumerated types of the data model.

create type public.currency as enum ('STAR', 'COIN');

create type public.transaction_type as enum (
  'purchase',       -- stars bought with a succeeded payment
  'invite_reward',  -- coins credited to an inviter
  'exchange',       -- coins converted to stars (one row per currency)
  'reading',        -- stars spent on a reading
  'refund',         -- a reading refunded, or stars clawed back after a Stripe refund
  'dispute'         -- stars clawed back after a lost dispute
);

-- Monotonic: a later state never returns to an earlier one (enforced by the webhook functions).
create type public.payment_status as enum (
  'pending', 'failed', 'canceled', 'succeeded', 'partially_refunded', 'refunded', 'disputed'
);

create type public.job_status as enum ('queued', 'processing', 'succeeded', 'failed', 'dlq');

create type public.user_tier as enum ('bronze', 'silver', 'gold');

create type public.invite_status as enum ('pending', 'accepted', 'expired');
