-- Schemas and extensions every later migration relies on.
--
-- `private` holds internal functions: PostgREST exposes only `public`, and the API roles get no
-- usage on it, so nothing here is callable through REST. service_role (trusted, server-side)
-- may use it.

create extension if not exists pg_trgm with schema extensions;

create schema if not exists private;
revoke all on schema private from public, anon, authenticated;
grant usage on schema private to service_role;

-- Thai search depends on pg_trgm seeing Thai letters, which it does only when the database's
-- LC_CTYPE is a UTF-8 locale; fail loudly here instead of silently finding nothing later.
do $$
begin
  if extensions.show_trgm(U&'\0E44\0E1E\0E48') = '{}'::text[] then
    raise exception 'pg_trgm sees no Thai characters'
      using detail = 'Create the database with a UTF-8 LC_CTYPE (for example C.UTF-8).';
  end if;
end
$$;
