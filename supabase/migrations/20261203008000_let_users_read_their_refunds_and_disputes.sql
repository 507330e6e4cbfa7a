-- A user reads the refunds and disputes of their own payments (and nobody else's): the app can
-- show where a refund is, and export_account(), which reads as the user under these policies,
-- includes them (Thailand's PDPA right of access). The rows hold Stripe ids, amounts and
-- statuses only. Writing stays with the service role (apply_stripe_event).

create policy payment_refunds_select_own on public.payment_refunds
  for select to authenticated
  using (exists (
    select 1 from public.payments p
    where p.id = payment_refunds.payment_id and p.user_id = (select auth.uid())
  ));

create policy payment_disputes_select_own on public.payment_disputes
  for select to authenticated
  using (exists (
    select 1 from public.payments p
    where p.id = payment_disputes.payment_id and p.user_id = (select auth.uid())
  ));

grant select on table public.payment_refunds to authenticated;
grant select on table public.payment_disputes to authenticated;
