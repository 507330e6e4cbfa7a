-- What a lost dispute took back, and the stars a claw-back could not take because the user had
-- already spent them. Together with amount_refunded and stars_clawed_back they make refunds and
-- disputes cumulative: each event moves the payment to a target, so replays and reorderings
-- converge on the same ledger.

alter table public.payments
  add column amount_disputed bigint not null default 0,
  add column stars_shortfall integer not null default 0,
  add constraint payments_amount_disputed_range check (amount_disputed between 0 and amount),
  add constraint payments_stars_shortfall_range check (stars_shortfall between 0 and stars_clawed_back);
