-- selfheal: privileges. No routine is open to PUBLIC except the event trigger functions, which
-- PostgreSQL calls only as triggers (calling one directly fails). Administrators grant EXECUTE on
-- selfheal.heal_error (and record_error) to app roles, and on heal() to a scheduling role.

GRANT USAGE ON SCHEMA selfheal TO PUBLIC;

REVOKE ALL ON ALL TABLES IN SCHEMA selfheal FROM PUBLIC;
-- ROUTINES, not FUNCTIONS: procedures (watch, backfill) are granted to PUBLIC by default too.
REVOKE ALL ON ALL ROUTINES IN SCHEMA selfheal FROM PUBLIC;
REVOKE ALL ON FUNCTION public.heal() FROM PUBLIC;
