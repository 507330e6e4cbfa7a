-- The card a purchase pays with, resolved once by begin_purchase when the payment is begun,
-- so a replay of the same request pays with the same card even if it was removed since.

alter table public.payments add column stripe_payment_method_id text;
