-- selfheal: privileges. Nothing is open to PUBLIC but the shorthand and the loader.
-- Administrators grant EXECUTE on selfheal.heal_error (and record_error) to app roles.

GRANT USAGE ON SCHEMA selfheal TO PUBLIC;

REVOKE ALL ON ALL TABLES IN SCHEMA selfheal FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA selfheal FROM PUBLIC;

-- The loader only extends sys.path with the root-owned install directory.
GRANT EXECUTE ON FUNCTION selfheal._load_python() TO PUBLIC;
-- Delegates to selfheal.heal(), whose own EXECUTE privilege decides.
GRANT EXECUTE ON FUNCTION public.heal() TO PUBLIC;
-- The event trigger shims run as whoever runs the DDL, and call these; without EXECUTE a
-- migration role's ALTER TABLE would fail. Called directly they act on nothing.
GRANT EXECUTE ON FUNCTION selfheal._ddl_start(text, text), selfheal._ddl_end(text, oid[]),
                          selfheal._ddl_dropped(text[], text[]), selfheal._concerns(text) TO PUBLIC;
