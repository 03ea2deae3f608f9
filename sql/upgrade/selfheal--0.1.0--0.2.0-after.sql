-- selfheal 0.1.0 -> 0.2.0, after the routines: compat views move from the one selfheal_compat
-- schema to one schema per source schema, so a view never answers for another schema's table.
-- 0.1.0's views go, every table's are built again from selfheal.alias, and each role 0.1.0
-- routed is routed the new way (selfheal_compat leaves its search_path).
DO $upgrade$
DECLARE
  view_name text;
BEGIN
  FOR view_name IN SELECT c.relname FROM pg_catalog.pg_class c
                    WHERE c.relnamespace = 'selfheal_compat'::pg_catalog.regnamespace AND c.relkind = 'v' LOOP
    EXECUTE pg_catalog.format('DROP VIEW selfheal_compat.%I', view_name);
  END LOOP;
END
$upgrade$;
SELECT selfheal.refresh_compat();
SELECT selfheal.enable_compat(r.rolname)
  FROM pg_catalog.pg_db_role_setting d
  JOIN pg_catalog.pg_roles r ON r.oid = d.setrole
 CROSS JOIN LATERAL unnest(d.setconfig) AS s
 WHERE d.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))
   AND s LIKE 'search\_path=%selfheal\_compat%'
 GROUP BY r.rolname;
