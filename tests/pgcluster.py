"""A throwaway PostgreSQL 15 cluster for tests, demos and benchmarks.

initdb and postgres refuse to run as root, so as root the cluster is created and run as
the postgres user. Run as a module it starts a cluster, runs a command against it with
PGHOST/PGPORT set, and stops it:  python -m tests.pgcluster [--keep] -- COMMAND...
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUPERUSER = "postgres"

# A server that logs jsonlog through the logging collector, for heal() to read, with pg_cron.
LOGGING = {
    "logging_collector": "on",
    "log_destination": "'jsonlog'",
    "log_rotation_age": "0",
    "log_rotation_size": "0",
    "shared_preload_libraries": "'pg_cron'",
    "cron.database_name": "'postgres'",
}


def _bindir() -> Path:
    out = subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True, text=True).stdout
    return Path(out.strip())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, settings: dict[str, str] | None = None):
        self.bindir = _bindir()
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="selfheal-pg-"))
        self.datadir = self.root / "data"
        self.settings = settings or {}
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", SUPERUSER, "--"] + cmd
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)

    def start(self) -> "Cluster":
        if self._as_root:
            shutil.chown(self.root, SUPERUSER)
        self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", SUPERUSER, "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        conf = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
            "lc_messages": "'C'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "120",
            **self.settings,
        }
        with open(self.datadir / "postgresql.conf", "a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.root / "server.log"),
                  "-w", "-t", "60", "start")
        return self

    @classmethod
    def standby_of(cls, primary: "Cluster") -> "Cluster":
        """A hot standby streaming from `primary`, made with pg_basebackup -R."""
        standby = cls()
        if standby._as_root:
            shutil.chown(standby.root, SUPERUSER)
        standby._run(str(standby.bindir / "pg_basebackup"), "-D", str(standby.datadir), "-h", "127.0.0.1",
                     "-p", str(primary.port), "-U", SUPERUSER, "-R", "-X", "stream", "-c", "fast")
        with open(standby.datadir / "postgresql.conf", "a") as f:  # later lines win over the primary's
            f.write(f"port = {standby.port}\nunix_socket_directories = '{standby.root}'\n")
        standby._run(str(standby.bindir / "pg_ctl"), "-D", str(standby.datadir), "-l",
                     str(standby.root / "server.log"), "-w", "-t", "60", "start")
        return standby

    def restart(self) -> None:
        """What an operator does after ALTER SYSTEM of a setting read only at start."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.root / "server.log"),
                  "-m", "fast", "-w", "-t", "60", "restart")

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": SUPERUSER,
                "PGDATABASE": "postgres"}

    def dsn(self, dbname: str = "postgres", user: str = SUPERUSER) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={user}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        return subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-qAt", "-d", dbname, "-c", sql],
                              check=True, capture_output=True, text=True, env=self.env).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the cluster running afterwards")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    cluster = Cluster().start()
    try:
        started = time.monotonic()
        result = subprocess.run(command, env=cluster.env)
        print(f"# {' '.join(command[:2])} finished in {time.monotonic() - started:.1f}s", file=sys.stderr)
        return result.returncode
    finally:
        if args.keep:
            print(f"# cluster left running: PGHOST=127.0.0.1 PGPORT={cluster.port} PGUSER={SUPERUSER} "
                  f"(data in {cluster.datadir})", file=sys.stderr)
        else:
            cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
