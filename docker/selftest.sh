#!/usr/bin/env bash
# Inside the image's test stage: first start through the entrypoint, as a user of the image
# would, then check the database, the password login, the extension and the server settings.
set -euo pipefail
root=$(mktemp -d)
chown postgres "$root"
export PGDATA=$root/data POSTGRES_USER=admin POSTGRES_PASSWORD=s3cret POSTGRES_DB=app
runuser -u postgres -- env PGDATA="$PGDATA" POSTGRES_USER="$POSTGRES_USER" POSTGRES_PASSWORD="$POSTGRES_PASSWORD" \
  POSTGRES_DB="$POSTGRES_DB" /usr/local/bin/selfheal-entrypoint postgres -c port=55433 \
  -c unix_socket_directories="$root" > "$root/entrypoint.log" 2>&1 &
for _ in $(seq 60); do
  pg_isready -q -h 127.0.0.1 -p 55433 && break
  sleep 0.5
done
export PGPASSWORD=$POSTGRES_PASSWORD
q() { psql -X -qAt -h 127.0.0.1 -p 55433 -U admin -d app -c "$1"; }
check() { [ "$(q "$1")" = "$2" ] || { echo "selftest: $1 gave '$(q "$1")', wanted '$2'" >&2; cat "$root/entrypoint.log" >&2; exit 1; }; }
check "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension WHERE extname IN ('selfheal', 'pg_cron', 'plpython3u')" "pg_cron,plpython3u,selfheal"
check "SHOW logging_collector" "on"
check "SHOW log_destination" "jsonlog"
check "SHOW lc_messages" "C"
check "SHOW shared_preload_libraries" "pg_cron"
check "SELECT (heal())->'log'->>'format'" "jsonlog"
if PGPASSWORD=wrong psql -X -qAt -h 127.0.0.1 -p 55433 -U admin -d app -c "SELECT 1" >/dev/null 2>&1; then
  echo "selftest: a wrong password was accepted" >&2
  exit 1
fi
runuser -u postgres -- pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
echo "selftest: first start through the entrypoint works (database app, user admin, selfheal, jsonlog, pg_cron)"
