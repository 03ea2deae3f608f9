#!/usr/bin/env bash
# First start: initialise $PGDATA, set up logging for heal() and pg_cron, create the database
# and the extension. Honours POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB as the official
# image does. Runs as the postgres user.
set -euo pipefail
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"

if [ "${1:-postgres}" = "postgres" ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != "trust" ]; then
    echo "selfheal: set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust for a throwaway server)" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s' "${POSTGRES_PASSWORD:-}" > "$pwfile"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" -E UTF8 --locale=C.UTF-8 --auth-local=trust \
         --auth-host="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" ${POSTGRES_PASSWORD:+--pwfile="$pwfile"} >/dev/null
  rm -f "$pwfile"
  cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
logging_collector = on
log_destination = 'jsonlog'
lc_messages = 'C'
shared_preload_libraries = 'pg_cron'
cron.database_name = '$POSTGRES_DB'
CONF
  echo "host all all all ${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$POSTGRES_DB" != "postgres" ]; then
    psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -qc "CREATE DATABASE \"$POSTGRES_DB\""
  fi
  psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -q \
       -c "CREATE EXTENSION pg_cron" -c "CREATE EXTENSION selfheal CASCADE"
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "selfheal: initialised $PGDATA; database $POSTGRES_DB has selfheal and pg_cron"
fi

if [ "${1:-postgres}" = "postgres" ]; then
  shift || true
  exec postgres -D "$PGDATA" "$@"
fi
exec "$@"
