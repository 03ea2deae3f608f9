"""The selfheal command line: setup, doctor, indexes, report, export, emergency and scan.

Client side only (psycopg); the server never imports this module. Database errors become one
line that says what to do; exit status 2 means selfheal could not do what was asked.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

DSN_HELP = "libpq connection string or URL (default: $DATABASE_URL, then the PG* variables)"


class Failure(Exception):
    """Stops a command with a one-line message and exit status 2."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("selfheal")
    except PackageNotFoundError:
        return "unknown (run from a source tree without pip install)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="selfheal", description="selfheal: schema drift repairs for PostgreSQL")
    parser.add_argument("--version", action="version", version=f"selfheal {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.add_argument("--dsn", default=None, help=DSN_HELP)
        return sub

    setup = command("setup", "adopt selfheal on a running database: log settings, the extension, app roles, "
                             "and heal() on a schedule; idempotent, never restarts the server")
    setup.add_argument("--app-role", action="append", default=[], metavar="ROLE",
                       help="the app's login role, routed and granted (repeat for several; default: none)")
    setup.add_argument("--every", default="1 minute", help="how often heal() runs (default: %(default)s)")
    setup.add_argument("--dry-run", action="store_true", help="print the SQL it would run, change nothing "
                                                              "(default: off)")
    doctor = command("doctor", "check a running installation end to end and name each fault")
    doctor.add_argument("--app-role", action="append", default=[], metavar="ROLE",
                        help="an app role to check for routing and grants (repeat; default: none)")
    report = command("report", "errors before and after their repairs")
    report.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page (default: none)")
    export = command("export", "every change selfheal applied, as one migration")
    export.add_argument("--format", choices=["sql", "alembic"], default="sql",
                        help="plain SQL in one transaction, or an Alembic revision (default: %(default)s)")
    export.add_argument("--down-revision", help="for --format alembic: the revision this one follows "
                                                "(default: none, a first revision)")
    export.add_argument("--output", metavar="FILE", help="write here (default: standard output)")
    emergency = command("emergency", "a fix script from a server log, without the extension")
    emergency.add_argument("--from-log", required=True, metavar="FILE",
                           help="jsonlog, csvlog or stderr log file (required)")
    indexes = command("indexes", "indexes that let reads filter on derived names as on their source columns")
    indexes.add_argument("--apply", action="store_true", help="build them with CREATE INDEX CONCURRENTLY "
                                                              "(default: only list them)")
    scan = command("scan", "wrong column and table names in application code")
    scan.add_argument("path", help="a source file, or a directory to scan (git's view of it when in a work tree)")
    scan.add_argument("--format", choices=["text", "json", "sarif"], default="text",
                      help="how findings are printed (default: %(default)s)")
    scan.add_argument("--fix", action="store_true", help="print a unified diff that renames wrong names "
                                                         "(default: off)")
    scan.add_argument("--write", action="store_true", help="apply the fixes in place (default: off)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import psycopg  # imported late so --help and --version work without it

    handler = {"setup": _setup, "doctor": _doctor, "report": _report, "export": _export,
               "emergency": _emergency, "scan": _scan, "indexes": _indexes}[args.command]
    try:
        return handler(args)
    except Failure as exc:
        print(f"selfheal: {exc}", file=sys.stderr)
        return 2
    except psycopg.Error as exc:
        print(f"selfheal: {_explain(exc, args)}", file=sys.stderr)
        return 2


def _connect(args):
    import psycopg
    try:
        return psycopg.connect(args.dsn if args.dsn is not None else os.environ.get("DATABASE_URL", ""),
                               autocommit=True)
    except psycopg.OperationalError as exc:
        raise Failure(f"cannot connect: {str(exc).strip().splitlines()[-1]}") from None


_DENIED = re.compile(r'permission denied for (table|view|function|procedure|schema|sequence) (\S+)')


def _explain(exc, args) -> str:
    """One line for a database error, naming what to run where selfheal knows it."""
    from psycopg import errors
    message = (exc.diag.message_primary or str(exc)).strip()
    missing = isinstance(exc, (errors.InvalidSchemaName, errors.UndefinedFunction, errors.UndefinedTable))
    if missing and "selfheal" in message:
        return (f"selfheal is not installed in this database: {message}; run selfheal setup --dsn ... "
                "(or CREATE EXTENSION selfheal CASCADE)")
    denied = _DENIED.search(message)
    if isinstance(exc, errors.InsufficientPrivilege) and denied:
        return f"{message}: as an administrator, run {_grant_for(args, *denied.groups())}"
    return message


_GRANT_TARGET = """
SELECT pg_catalog.quote_ident(current_user),
       (SELECT string_agg(p.oid::pg_catalog.regprocedure::text, ', ') FROM pg_catalog.pg_proc p
         WHERE p.proname = %(name)s AND p.pronamespace = 'selfheal'::pg_catalog.regnamespace),
       (SELECT c.oid::pg_catalog.regclass::text FROM pg_catalog.pg_class c
         WHERE c.relname = %(name)s ORDER BY c.relnamespace <> 'selfheal'::pg_catalog.regnamespace LIMIT 1)
"""


def _grant_for(args, kind: str, name: str) -> str:
    """The exact GRANT that lets the connected role past a permission error."""
    import psycopg
    try:
        with _connect(args) as conn:
            user, routine, relation = conn.execute(_GRANT_TARGET, {"name": name}).fetchone()
    except (Failure, psycopg.Error):
        user, routine, relation = "<role>", None, None
    if kind == "schema":
        return f"GRANT USAGE ON SCHEMA {name} TO {user}"
    if kind in ("function", "procedure"):
        return f"GRANT EXECUTE ON {kind.upper()} {routine or name} TO {user}"
    if kind == "sequence":
        return f"GRANT USAGE ON SEQUENCE {relation or name} TO {user}"
    return f"GRANT SELECT ON {relation or name} TO {user}"


# ---------------------------------------------------------------------------------------
# Checklists (setup, doctor)

_COLOURS = {"done": "32", "already so": "2", "ok": "32", "needs you": "33", "would run": "36", "fault": "31"}


def _colour(text: str, state: str, stream) -> str:
    if not stream.isatty() or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return text
    return f"\033[{_COLOURS.get(state, '0')}m{text}\033[0m"


def print_checklist(title: str, steps, stream=None) -> None:
    stream = stream or sys.stdout
    print(title, file=stream)
    width = max((len(s.state) for s in steps), default=0) + 2
    for step in steps:
        label = _colour(f"[{step.state}]".ljust(width), step.state, stream)
        detail = f": {step.detail}" if step.detail else ""
        print(f"  {label} {step.what}{detail}", file=stream)
        for statement in step.sql:
            print(f"  {' ' * width}   {statement};", file=stream)


def _setup(args) -> int:
    """Exit 0: all done or already so; 1: a step needs the operator (a restart, a role)."""
    from . import adopt
    from ..core.wording import plural
    with _connect(args) as conn:
        try:
            steps = adopt.setup(conn, args.app_role, args.every, dry_run=args.dry_run)
        except (adopt.AdoptError, ValueError) as exc:
            raise Failure(str(exc)) from None
        info = conn.info
        print_checklist(f"selfheal setup{' --dry-run' if args.dry_run else ''}: database {info.dbname} "
                        f"on {info.host}:{info.port}", steps)
    waiting = [s for s in steps if s.state == adopt.NEEDS_YOU]
    if waiting:
        print(f"{plural(len(waiting), 'step')} left for you; run selfheal setup again after them.")
    return 1 if waiting else 0


def _doctor(args) -> int:
    """Exit 0: healthy; 1: faults found."""
    from . import adopt
    from ..core.wording import plural
    with _connect(args) as conn:
        try:
            checks = adopt.doctor(conn, args.app_role)
        except adopt.AdoptError as exc:
            raise Failure(str(exc)) from None
        print_checklist(f"selfheal doctor: database {conn.info.dbname} on {conn.info.host}:{conn.info.port}", checks)
    faults = [c for c in checks if c.state == adopt.FAULT]
    print(f"{plural(len(faults), 'fault')} found." if faults else "selfheal is healthy.")
    return 1 if faults else 0


def _indexes(args) -> int:
    """Exit 0: nothing left to build; 1: some listed (without --apply) or a build failed."""
    from . import adopt
    with _connect(args) as conn:
        steps = adopt.indexes(conn, apply=args.apply)
        print_checklist(f"selfheal indexes{' --apply' if args.apply else ''}: database {conn.info.dbname}", steps)
    if not steps:
        print("No derived name asks for an index.")
    return 1 if any(s.state in (adopt.WOULD_RUN, adopt.FAULT) for s in steps) else 0


# ---------------------------------------------------------------------------------------
# Report, export, emergency, scan


def _report(args) -> int:
    from . import report
    with _connect(args) as conn:
        sys.stdout.write(report.render_text(report.fetch_report(conn)))
        if args.html:
            page = report.build_html(conn, f"selfheal report: {conn.info.dbname}")
            _write(args.html, page)
            print(f"wrote {args.html}")
    return 0


def _export(args) -> int:
    from . import export
    from ..core.wording import plural
    with _connect(args) as conn:
        migration = export.build(conn)
    text = (export.render_alembic(migration, args.down_revision) if args.format == "alembic"
            else export.render_sql(migration))
    if args.output:
        _write(args.output, text)
        print(f"wrote {args.output}: {plural(migration.changes, 'statement')}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _emergency(args) -> int:
    from ..core import logreader
    from . import emergency
    try:
        size = os.path.getsize(args.from_log)
    except OSError as exc:
        raise Failure(f"cannot read {args.from_log}: {exc.strerror}") from None
    with _connect(args) as conn:
        try:  # the log is read as it is planned, never held whole
            with _progress(size, "reading the log", "B") as bar:
                script = emergency.build_script(conn, logreader.iter_whole_log(args.from_log, bar.update))
        except (OSError, logreader.LogReadError) as exc:
            raise Failure(f"cannot read {args.from_log}: {getattr(exc, 'strerror', None) or exc}") from None
    sys.stdout.write(script)
    return 0


def _scan(args) -> int:
    """Exit 0: clean; 1: wrong names found; 2: usage or connection error."""
    from . import scan
    from ..core.wording import plural
    try:
        scan.source_files(args.path)  # a clear error for a path that is neither a source file nor a directory
    except ValueError as exc:
        raise Failure(str(exc)) from None
    with _connect(args) as conn:
        result, texts, snippets = scan.scan(args.path, conn, progress=sys.stderr.isatty())
    render = {"text": scan.render_text, "json": scan.render_json, "sarif": scan.render_sarif}[args.format]
    if args.fix or args.write:
        patched = scan.fixes(result, texts, snippets)
        if args.write:
            for path, text in patched.items():
                _write(path, text)
            print(f"selfheal: fixed {plural(len(patched), 'file')}", file=sys.stderr)
        else:
            sys.stdout.write(scan.unified_diff(args.path, texts, patched))
    else:
        sys.stdout.write(render(result))
    return 1 if result.findings else 0


def _progress(total: int, what: str, unit: str):
    """A progress bar on standard error, shown only when it is a terminal."""
    from tqdm import tqdm
    return tqdm(total=total, desc=f"selfheal: {what}", unit=unit, unit_scale=unit == "B",
                disable=not sys.stderr.isatty(), file=sys.stderr, leave=False)


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise Failure(f"cannot write {path}: {exc.strerror}") from None

