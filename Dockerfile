# PostgreSQL 15 from Debian's own packages with plpython3u, pgTAP, pg_cron and selfheal.
# The server logs jsonlog for heal(), preloads pg_cron, and creates the extension on first start.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS base
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      postgresql-15 postgresql-plpython3-15 postgresql-15-pgtap postgresql-15-cron \
      postgresql-server-dev-15 make ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH
WORKDIR /src/selfheal
COPY . .
RUN make install PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config

# The project's unit, pgTAP and integration tests, run inside the image during the build,
# then a first start through the entrypoint as a user of the image would do it.
FROM base AS test
# Where the build must trust an extra certificate authority to reach PyPI (a proxy), the
# builder lends its bundle through a volume and names it here; empty, pip's own is used.
ARG PIP_CERT=
COPY docker/entrypoint.sh /usr/local/bin/selfheal-entrypoint
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libtap-parser-sourcehandler-pgtap-perl python3 python3-venv \
 && ${PIP_CERT:+env PIP_CERT="$PIP_CERT"} bash scripts/setup.sh \
 && make test \
 && bash docker/selftest.sh

FROM base AS runtime
COPY docker/entrypoint.sh /usr/local/bin/selfheal-entrypoint
RUN mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 0700 /var/lib/postgresql/data
ENV PGDATA=/var/lib/postgresql/data
USER postgres
EXPOSE 5432
ENTRYPOINT ["selfheal-entrypoint"]
CMD ["postgres"]
