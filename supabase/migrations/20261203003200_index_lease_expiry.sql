-- When a processing job's lease runs out, as an indexable expression: queue_health and the
-- sweep find expired leases through this index instead of reading every processing job.
--
-- timestamptz + interval is only stable in general (days and months depend on the time zone);
-- an interval of seconds alone does not, so this function is immutable. The SET clause keeps
-- it from being inlined, which lets queries match the index expression.

create function private.lease_expires_at(p_started_at timestamptz, p_secs integer)
returns timestamptz
language sql
immutable
parallel safe
set search_path = ''
as $$
  select p_started_at + pg_catalog.make_interval(secs => p_secs)
$$;

revoke all on function private.lease_expires_at(timestamptz, integer)
  from public, anon, authenticated;
grant execute on function private.lease_expires_at(timestamptz, integer) to service_role;

create index jobs_lease_expiry_idx
  on public.jobs (private.lease_expires_at(started_at, visibility_timeout_secs))
  where status = 'processing';
