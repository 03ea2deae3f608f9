-- selfheal: schemas. The extension's own schema (selfheal) is created by CREATE EXTENSION.
\echo Use "CREATE EXTENSION selfheal CASCADE" to load this file. \quit

-- The sync functions of in-table derived columns live here. Compat views live in one schema per
-- source schema (selfheal_compat_<schema>), made on first use; a routed role finds each just
-- before the schema it serves.
CREATE SCHEMA selfheal_compat;
COMMENT ON SCHEMA selfheal_compat IS
  'Trigger functions that keep in-table derived columns in sync; compat views are in selfheal_compat_<schema>';

REVOKE ALL ON SCHEMA selfheal FROM PUBLIC;
REVOKE ALL ON SCHEMA selfheal_compat FROM PUBLIC;
