revoke select on table public.payment_refunds from authenticated;
revoke select on table public.payment_disputes from authenticated;
drop policy payment_refunds_select_own on public.payment_refunds;
drop policy payment_disputes_select_own on public.payment_disputes;
