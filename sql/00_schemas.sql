-- selfheal: schemas. The extension's own schema (selfheal) is created by CREATE EXTENSION.
\echo Use "CREATE EXTENSION selfheal CASCADE" to load this file. \quit

-- Compat views live here; a routed role has this schema first on its search_path.
CREATE SCHEMA selfheal_compat;
COMMENT ON SCHEMA selfheal_compat IS
  'Compat views that serve legacy column and relation names; rebuilt by selfheal, do not edit';

REVOKE ALL ON SCHEMA selfheal FROM PUBLIC;
REVOKE ALL ON SCHEMA selfheal_compat FROM PUBLIC;
