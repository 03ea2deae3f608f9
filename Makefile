# selfheal: PGXS build. The version is written once, in selfheal.control.
EXTENSION = selfheal
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(EXTENSION).control)

PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
# Tests run in the venv that scripts/setup.sh makes, when it is there.
TEST_PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

# Versions that upgrade straight to this one, each with its own sql/upgrade/ script.
UPGRADES_FROM = 0.1.0
DATA_built = $(EXTENSION)--$(EXTVERSION).sql $(foreach v,$(UPGRADES_FROM),$(EXTENSION)--$(v)--$(EXTVERSION).sql)
EXTRA_CLEAN = $(EXTENSION)--*.sql

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The Python package is installed beside the server's libraries, one directory per version.
PYTHON_LIB_DIR = $(pkglibdir)/$(EXTENSION)/$(EXTVERSION)
# The server gets the core and server packages; client/ and cli/ stay client side.
SERVER_PACKAGES = core server
SQL_SOURCES = $(sort $(wildcard sql/*.sql))

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_SOURCES) $(EXTENSION).control
	sed 's|@PYTHON_LIB_DIR@|$(PYTHON_LIB_DIR)|g' $(SQL_SOURCES) > $@

# An upgrade script: its own table changes, then the same routine and privilege files as the
# install script, then its -after part (work that calls the new routines), if it has one. When
# the version moves on, keep the built script whole in sql/upgrade/.
ROUTINE_SOURCES = sql/20_functions.sql sql/30_report.sql sql/40_event_triggers.sql sql/90_privileges.sql
$(EXTENSION)--%--$(EXTVERSION).sql: sql/upgrade/$(EXTENSION)--%--$(EXTVERSION).sql $(ROUTINE_SOURCES) $(EXTENSION).control $(wildcard sql/upgrade/*-after.sql)
	sed 's|@PYTHON_LIB_DIR@|$(PYTHON_LIB_DIR)|g' $< $(ROUTINE_SOURCES) $(wildcard $(basename $<)-after.sql) > $@

install: install-python
# The version's directory is replaced whole, so no module from an earlier layout is left behind.
install-python:
	rm -rf '$(DESTDIR)$(PYTHON_LIB_DIR)/selfheal'
	$(MKDIR_P) '$(DESTDIR)$(PYTHON_LIB_DIR)/selfheal'
	$(INSTALL_DATA) plpython/selfheal/__init__.py '$(DESTDIR)$(PYTHON_LIB_DIR)/selfheal/'
	for package in $(SERVER_PACKAGES); do \
		$(MKDIR_P) '$(DESTDIR)$(PYTHON_LIB_DIR)/selfheal/'$$package && \
		$(INSTALL_DATA) plpython/selfheal/$$package/*.py '$(DESTDIR)$(PYTHON_LIB_DIR)/selfheal/'$$package/ || exit 1; \
	done

uninstall: uninstall-python
uninstall-python:
	rm -rf '$(DESTDIR)$(pkglibdir)/$(EXTENSION)'

.PHONY: install-python uninstall-python test unit pgtap integration demo walkthrough bench docker-test docker-image

# Tests: unit tests need no server; pgTAP and integration tests start a throwaway cluster.
test: unit pgtap integration

unit:
	$(TEST_PYTHON) -m pytest -q tests/unit

pgtap: install
	$(TEST_PYTHON) -m tests.pgcluster -- pg_prove --failures tests/sql/*.sql

integration: install
	$(TEST_PYTHON) -m pytest -q tests/integration

# Benchmarks print a table; figures are recorded in docs/benchmarks.md with this command.
bench: install
	$(TEST_PYTHON) -m bench.heal_latency
	$(TEST_PYTHON) -m bench.backfill
	$(TEST_PYTHON) -m bench.flat
	$(TEST_PYTHON) -m bench.heal_batch
	$(TEST_PYTHON) -m bench.derived_reads
	$(TEST_PYTHON) -m bench.log_capture
	$(TEST_PYTHON) -m bench.client
	$(TEST_PYTHON) -m bench.ddl_overhead
	$(TEST_PYTHON) -m bench.compat
	$(TEST_PYTHON) -m bench.scan
	$(TEST_PYTHON) -m bench.lock_queue

# The seed's story: an error storm, heal(), the Before / After report and its HTML page.
demo: install
	$(TEST_PYTHON) -m demo.storm --html selfheal-demo.html

# The same story step by step in psql, one statement at a time.
walkthrough: install
	$(TEST_PYTHON) -m tests.pgcluster -- bash demo/seed.sh

# The image, built through its test stage (which runs make test inside it) with podman.
docker-test:
	bash scripts/docker-test.sh

docker-image:
	TARGET=runtime bash scripts/docker-test.sh
