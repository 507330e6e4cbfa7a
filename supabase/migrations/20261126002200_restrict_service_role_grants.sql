-- Hosted Supabase's default privileges give service_role ALL on every new public table, so the
-- explicit grants of the table migrations only ever added to that. Reset service_role to exactly
-- what the server side needs: in particular, balances, tier and invite counters of users and the
-- ledger are written only by SQL functions owned by the migration role.

revoke all on table
  public.star_packages, public.reading_prices, public.pricing_settings, public.tier_bonuses,
  public.users, public.user_identities, public.stripe_customers, public.payments, public.jobs,
  public.tarot_readings, public.user_invites, public.wallet_transactions, public.job_attempts,
  public.user_payment_methods, public.stripe_events
from service_role;

grant select, insert, update, delete on table
  public.star_packages, public.reading_prices, public.pricing_settings, public.tier_bonuses,
  public.user_identities, public.stripe_customers, public.payments, public.jobs,
  public.tarot_readings, public.user_invites, public.job_attempts, public.user_payment_methods
to service_role;

grant select, insert, delete on table public.users to service_role;
grant update (external_id, external_provider, email, name, picture_url, last_login_at)
  on table public.users to service_role;

grant select on table public.wallet_transactions to service_role;

grant select, insert, delete on table public.stripe_events to service_role;
