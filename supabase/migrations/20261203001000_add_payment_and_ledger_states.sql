-- The states a Thai customer's payment passes through before it settles: a card asking for
-- 3-D Secure or a PromptPay QR waiting to be paid (requires_action), a payment the bank is still
-- confirming (processing). And the ledger's credits that undo a reversal: a refund that failed
-- or was canceled (refund_reversal), a dispute won (dispute_release).
--
-- New enum values cannot be used in the transaction that adds them; only function bodies of
-- later migrations name them.

alter type public.payment_status add value if not exists 'requires_action' after 'pending';
alter type public.payment_status add value if not exists 'processing' after 'requires_action';

alter type public.transaction_type add value if not exists 'refund_reversal';
alter type public.transaction_type add value if not exists 'dispute_release';
