-- Who ran which operator command (`python -m ops.admin`), when, why, and how it ended.
--
-- Only the operator commands write here: they connect as the database owner (the migration
-- role) and insert before the command runs, so a command whose record cannot be written does
-- not run. The API roles and service_role get nothing (a function's leaked key cannot forge or
-- read the trail), RLS is on with no policy, and rows are append-only: the one change allowed
-- is setting the outcome of a record that has none yet.

create table private.operator_actions (
  id bigint generated always as identity primary key,
  operator text not null check (char_length(operator) between 1 and 200),
  reason text not null check (char_length(reason) between 1 and 2000),
  command text not null check (char_length(command) between 1 and 100),
  arguments jsonb not null default '{}'::jsonb check (jsonb_typeof(arguments) = 'object'),
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  exit_code integer,
  error text,
  constraint operator_actions_outcome check ((finished_at is null) = (exit_code is null))
);

create index operator_actions_started_idx on private.operator_actions (started_at desc);
create index operator_actions_operator_idx on private.operator_actions (operator, started_at desc);

-- No policy: only the owner (and roles that bypass RLS) see rows, and nobody else has a grant.
alter table private.operator_actions enable row level security;

revoke all on table private.operator_actions from public, anon, authenticated, service_role;

create function private.operator_actions_append_only()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op in ('DELETE', 'TRUNCATE') then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'Operator actions are never deleted.';
  end if;
  if old.finished_at is not null
     or (new.id, new.operator, new.reason, new.command, new.arguments, new.started_at)
        is distinct from
        (old.id, old.operator, old.reason, old.command, old.arguments, old.started_at) then
    raise exception using errcode = 'MV006', message = 'validation_error',
      detail = 'An operator action only gets its outcome, once.';
  end if;
  return new;
end
$$;

revoke all on function private.operator_actions_append_only() from public, anon, authenticated,
  service_role;

create trigger operator_actions_append_only
  before update or delete on private.operator_actions
  for each row execute function private.operator_actions_append_only();
create trigger operator_actions_no_truncate
  before truncate on private.operator_actions
  for each statement execute function private.operator_actions_append_only();
