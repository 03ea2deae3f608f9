# selfheal on PostgreSQL 15 from Debian's own packages. Minimal for now: it installs the
# extension and, in the `test` stage, runs the test suite during the build.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE} AS base
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      postgresql-15 postgresql-plpython3-15 postgresql-server-dev-15 make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src/selfheal
COPY . .
RUN make install PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
ENV PATH=/usr/lib/postgresql/15/bin:$PATH

FROM base AS test
RUN bash scripts/setup.sh && make test

FROM base AS runtime
USER postgres
CMD ["bash", "-c", "echo 'selfheal is installed; run postgres with your data directory'"]
