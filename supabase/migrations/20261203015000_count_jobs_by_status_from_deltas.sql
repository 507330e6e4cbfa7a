-- queue_health() without counting job rows: the counts by status come from per-status totals
-- plus a short log of deltas, so they cost the same at any number of open and dead-lettered jobs.
--
-- Writers of public.jobs only append to the log: statement-level AFTER triggers with transition
-- tables insert one row per status whose count the statement changed (an update that leaves a
-- row's status alone adds nothing). No writer updates a shared row, so writers never wait on
-- each other here and cannot deadlock through it. TRUNCATE needs no trigger: jobs cannot be
-- truncated (the ledger references them and refuses TRUNCATE, CASCADE or not).
-- A fold moves the log into the totals, one caller at a time (a transaction advisory lock; a
-- caller that does not get it skips the fold);
-- queue_health() folds first, then reads totals + what is still in the log. Everything a reader
-- sees comes from one snapshot, and a delta commits with the job write that caused it, so the
-- figures are exactly the counts in that snapshot.
--
-- Retries due and expired leases depend on the clock and stay index-bound counts of what is due;
-- the oldest queued job stays the first entry of the (status, created_at) index.
--
-- Backfill: the table lock below (taken before the triggers exist, held until this migration
-- commits) waits for writers in flight and blocks new ones, so every job write is either
-- counted by the backfill or seen by the triggers, never both or neither. Readers are not
-- blocked; writers wait for one index-only count by status.

lock table public.jobs in share row exclusive mode;

create table private.job_status_totals (
  status public.job_status primary key,
  jobs bigint not null check (jobs >= 0)
);

-- Append-only between folds; no key: nothing looks a row up, and inserts touch no index.
create table private.job_status_deltas (
  status public.job_status not null,
  delta bigint not null check (delta <> 0)
);

-- No policy and no grant: only the owner's functions below read or write them.
alter table private.job_status_totals enable row level security;
alter table private.job_status_deltas enable row level security;
revoke all on table private.job_status_totals, private.job_status_deltas
  from public, anon, authenticated, service_role;

create function private.log_inserted_jobs()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.job_status_deltas (status, delta)
  select n.status, pg_catalog.count(*) from new_jobs n group by n.status;
  return null;
end
$$;

-- Only rows whose status changed count: the statement's net change per status.
create function private.log_updated_jobs()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.job_status_deltas (status, delta)
  select c.status, pg_catalog.sum(c.delta)
    from (select n.status, 1 as delta from new_jobs n
          union all
          select o.status, -1 from old_jobs o) c
   group by c.status
  having pg_catalog.sum(c.delta) <> 0;
  return null;
end
$$;

-- Deletes include those cascaded from public.users (account deletion).
create function private.log_deleted_jobs()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.job_status_deltas (status, delta)
  select o.status, -pg_catalog.count(*) from old_jobs o group by o.status;
  return null;
end
$$;

-- Moves the log into the totals; false when another transaction is folding (it will do the
-- same work). Under READ COMMITTED the delete takes the deltas committed in its snapshot and the
-- update adds them to the latest totals, so a fold loses nothing and counts nothing twice.
create function private.fold_job_status_deltas()
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not pg_catalog.pg_try_advisory_xact_lock(
       pg_catalog.hashtextextended('private.fold_job_status_deltas', 0)) then
    return false;
  end if;
  -- A status added to the type later gets its row here (a no-op for the others).
  insert into private.job_status_totals (status, jobs)
  select s.status, 0
    from pg_catalog.unnest(pg_catalog.enum_range(null::public.job_status)) s (status)
  on conflict (status) do nothing;
  with folded as (
    delete from private.job_status_deltas d returning d.status, d.delta
  ),
  net as (
    select f.status, pg_catalog.sum(f.delta) as delta from folded f group by f.status
  )
  update private.job_status_totals t set jobs = t.jobs + net.delta
    from net where t.status = net.status;
  return true;
end
$$;

-- The number of jobs in each status (every status, zeros included), after a fold.
create function private.job_status_counts()
returns table (status public.job_status, jobs bigint)
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  perform private.fold_job_status_deltas();
  return query
    select s.status, coalesce(t.jobs, 0) + coalesce(d.delta, 0)
      from pg_catalog.unnest(pg_catalog.enum_range(null::public.job_status)) s (status)
      left join private.job_status_totals t on t.status = s.status
      left join (select l.status, pg_catalog.sum(l.delta)::bigint as delta
                   from private.job_status_deltas l group by l.status) d
        on d.status = s.status;
end
$$;

revoke all on function private.log_inserted_jobs(), private.log_updated_jobs(),
  private.log_deleted_jobs(), private.fold_job_status_deltas()
  from public, anon, authenticated, service_role;
revoke all on function private.job_status_counts() from public, anon, authenticated;
grant execute on function private.job_status_counts() to service_role;

create trigger jobs_log_inserted_status after insert on public.jobs
  referencing new table as new_jobs
  for each statement execute function private.log_inserted_jobs();
create trigger jobs_log_updated_status after update on public.jobs
  referencing old table as old_jobs new table as new_jobs
  for each statement execute function private.log_updated_jobs();
create trigger jobs_log_deleted_status after delete on public.jobs
  referencing old table as old_jobs
  for each statement execute function private.log_deleted_jobs();

insert into private.job_status_totals (status, jobs)
select s.status, (select pg_catalog.count(*) from public.jobs j where j.status = s.status)
  from pg_catalog.unnest(pg_catalog.enum_range(null::public.job_status)) s (status);

-- Volatile now: it folds the log (PostgREST runs a POSTed volatile function read-write).
create or replace function public.queue_health()
returns table (
  depth bigint,
  queued bigint,
  processing bigint,
  failed bigint,
  retries_due bigint,
  expired_leases bigint,
  dead_letters bigint,
  oldest_queued_at timestamptz,
  oldest_queued_age_seconds double precision,
  checked_at timestamptz
)
language sql
volatile
set search_path = ''
as $$
  with c as materialized (
    select
      coalesce(pg_catalog.max(s.jobs) filter (where s.status = 'queued'), 0) as queued,
      coalesce(pg_catalog.max(s.jobs) filter (where s.status = 'processing'), 0) as processing,
      coalesce(pg_catalog.max(s.jobs) filter (where s.status = 'failed'), 0) as failed,
      coalesce(pg_catalog.max(s.jobs) filter (where s.status = 'dlq'), 0) as dead_letters
    from private.job_status_counts() s
  ),
  q as materialized (
    select
      c.queued, c.processing, c.failed, c.dead_letters,
      (select pg_catalog.count(*) from public.jobs j
        where j.status = 'failed' and j.next_retry_at <= pg_catalog.now()) as retries_due,
      (select pg_catalog.count(*) from public.jobs j
        where j.status = 'processing'
          and private.lease_expires_at(j.started_at, j.visibility_timeout_secs)
              < pg_catalog.now()) as expired_leases,
      (select pg_catalog.min(j.created_at) from public.jobs j where j.status = 'queued')
        as oldest
    from c
  )
  select q.queued + q.processing + q.failed, q.queued, q.processing, q.failed, q.retries_due,
         q.expired_leases, q.dead_letters, q.oldest,
         coalesce(extract(epoch from pg_catalog.now() - q.oldest)::double precision, 0),
         pg_catalog.now()
    from q
$$;

revoke all on function public.queue_health() from public, anon, authenticated;
grant execute on function public.queue_health() to service_role;
