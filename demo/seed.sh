#!/usr/bin/env bash
# The seed story: an app's queries fail on schema drift, selfheal repairs them, the audit
# shows what changed, and undo reverses it. Runs against the server named by PGHOST/PGPORT
# (make demo starts a throwaway one).
set -euo pipefail
export PGDATABASE=selfheal_demo
psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS selfheal_demo" -c "CREATE DATABASE selfheal_demo"
psql -X -q -c "DROP ROLE IF EXISTS app" 2>/dev/null || true

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
as_admin() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
as_app() { psql -X -q -U app "$@"; }

step "The schema today, and an app role routed through selfheal's compat layer"
as_admin <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION selfheal CASCADE;
CREATE TABLE sessions (id serial PRIMARY KEY, service_type text NOT NULL, started_at timestamptz DEFAULT now());
INSERT INTO sessions (service_type) VALUES ('1'), ('2'), ('3');
CREATE TABLE credit_packages (id serial PRIMARY KEY, credits int NOT NULL);
INSERT INTO credit_packages (credits) VALUES (10), (50);
CREATE ROLE app LOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE ON sessions, credit_packages TO app;
GRANT EXECUTE ON FUNCTION selfheal.heal_error(text, text, text, text),
                          selfheal.record_error(text, text, text, text) TO app;
SELECT selfheal.enable_compat('app');
SQL

for query in "SELECT recommendation_data FROM sessions" \
             "SELECT id, service_type_id FROM sessions WHERE service_type_id = 1" \
             "SELECT cp.package_name FROM credit_packages cp"; do
  step "The app runs: $query"
  output=$(as_app -c "$query" 2>&1 || true)
  printf '%s\n' "$output" | sed 's/^/   /'
  # A client integration reports the error it saw; here the demo does it by hand.
  error=$(printf '%s\n' "$output" | sed -n 's/^ERROR: *//p' | head -1)
  hint=$(printf '%s\n' "$output" | sed -n 's/^HINT: *//p' | head -1)
  step "selfheal.heal_error('42703', '$error', ...)"
  as_app -v msg="$error" -v stmt="$query" -v hint="$hint" <<'SQL'
SELECT status, action, reason FROM selfheal.heal_error('42703', :'msg', :'stmt', NULLIF(:'hint', ''));
SQL
  step "The same query again"
  as_app -c "$query"
done

step "An administrator declares what package_name means"
as_admin -c "SELECT selfheal.add_alias('credit_packages', 'package_name', \$\$'Package ' || credits || ' credits'\$\$)"
as_app -c "SELECT cp.package_name FROM credit_packages cp"

step "Errors that are not schema errors are recorded, never 'fixed'"
as_app -c "SELECT selfheal.record_error('22012', 'division by zero', 'SELECT 1/0')" >/dev/null
as_app -c "SELECT selfheal.record_error('P0001', 'Cost calculation error', 'SELECT calc()')" >/dev/null
as_admin -c "SELECT heal()"

step "selfheal.audit: what changed, why, and how to undo it"
as_admin -c "SELECT id, action, status, table_name, column_name, reason FROM selfheal.audit ORDER BY id"
as_admin -At -c "SELECT ddl FROM selfheal.audit WHERE action = 'add_column' ORDER BY id LIMIT 1"

step "Undo the first change"
as_admin -c "SELECT selfheal.undo((SELECT min(id) FROM selfheal.audit WHERE action = 'add_column'))"
(as_app -c "SELECT recommendation_data FROM sessions" 2>&1 || true) | sed 's/^/   /'
printf '\nDemo done.\n'
