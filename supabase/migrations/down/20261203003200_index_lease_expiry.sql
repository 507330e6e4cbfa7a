drop index public.jobs_lease_expiry_idx;
drop function private.lease_expires_at(timestamptz, integer);
