-- A reading canceled before it ran (its account was deleted) ends `canceled`, not among the dead
-- letters: nothing failed, and operators reading `queue_health()` or `ops.admin dead-letters`
-- should not be called for it. New enum values cannot be used in the transaction that adds them;
-- only function bodies of later migrations name it.

alter type public.job_status add value if not exists 'canceled';
