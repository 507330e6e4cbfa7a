-- Helpers shared by several tables: the updated_at trigger and the Thai question normalizer.

create function private.set_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;

-- Normalizes a question for storage and matching (both sides must use this one function):
-- NFC, zero-width characters removed, the two-character spellings of SARA AM (nikhahit + sara aa)
-- and SARA AE (sara e twice) folded to the single code points keyboards also produce,
-- white space (including no-break space) collapsed, trimmed, lower-cased.
create function private.normalize_question(p_question text)
returns text
language sql
immutable
strict
parallel safe
set search_path = ''
as $$
  select lower(btrim(regexp_replace(
    replace(
      replace(
        translate(
          normalize(p_question, nfc),
          U&'\00A0\200B\200C\200D\2060\FEFF',  -- no-break space to space, the rest dropped
          ' '
        ),
        U&'\0E4D\0E32', U&'\0E33'
      ),
      U&'\0E40\0E40', U&'\0E41'
    ),
    '[[:space:]]+', ' ', 'g'
  )))
$$;

revoke all on function private.set_updated_at() from public, anon, authenticated;
revoke all on function private.normalize_question(text) from public, anon, authenticated;
-- service_role inserts readings, whose generated column evaluates the normalizer as that role.
grant execute on function private.normalize_question(text) to service_role;
