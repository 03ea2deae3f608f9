#!/usr/bin/env bash
# Prepare a fresh Debian 12 machine: PostgreSQL 15 with PL/Python, pgTAP, pg_cron and PGXS,
# a virtual environment with the test dependencies from pyproject.toml, and selfheal
# installed into the server with `make install`. Run as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium renders the HTML report in the tests (headless); the fonts give its text shapes.
# pgbadger is read beside heal() by the log benchmark (make bench).
packages=(postgresql-15 postgresql-plpython3-15 postgresql-15-pgtap postgresql-15-cron libtap-parser-sourcehandler-pgtap-perl
          postgresql-server-dev-15 python3 python3-venv make chromium fonts-dejavu-core pgbadger)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian's own python3 runs inside PostgreSQL; the tests use a venv built from it too.
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv .venv
fi
# The package itself (for the selfheal CLI) with its test dependencies, from pyproject.toml.
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

make -s install PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config

# The selfheal command on PATH, as pipx would put it: a link to the venv's entry point.
if [ -w /usr/local/bin ]; then
  ln -sf "$PWD/.venv/bin/selfheal" /usr/local/bin/selfheal
  where="selfheal on PATH"
else
  where="run .venv/bin/selfheal"
fi
echo "selfheal: setup done (PostgreSQL 15, pgTAP, .venv, extension installed; $where)"
