"""The selfheal command line: `selfheal report [--html FILE]`.

Client side only (psycopg); the server never imports this module.
"""

from __future__ import annotations

import argparse
import os
import sys

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="selfheal", description="selfheal: schema drift repairs")
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="errors before and after their repairs")
    report.add_argument("--dsn", default=os.environ.get("DATABASE_URL", ""),
                        help="libpq connection string (default: DATABASE_URL, then the PG* variables)")
    report.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page")
    export = commands.add_parser("export", help="every change selfheal applied, as one migration")
    export.add_argument("--dsn", default=os.environ.get("DATABASE_URL", ""),
                        help="libpq connection string (default: DATABASE_URL, then the PG* variables)")
    export.add_argument("--format", choices=["sql", "alembic"], default="sql")
    export.add_argument("--down-revision", help="for --format alembic: the revision this one follows")
    export.add_argument("--output", metavar="FILE", help="write here instead of standard output")
    emergency = commands.add_parser("emergency", help="a fix script from a server log, without the extension")
    emergency.add_argument("--from-log", required=True, metavar="FILE", help="jsonlog, csvlog or stderr log file")
    emergency.add_argument("--dsn", default=os.environ.get("DATABASE_URL", ""),
                           help="the database whose catalog the fixes are planned against")
    scan = commands.add_parser("scan", help="wrong column and table names in application code")
    scan.add_argument("path")
    scan.add_argument("--dsn", default=os.environ.get("DATABASE_URL", ""), help="the database to check against")
    scan.add_argument("--format", choices=["text", "json", "sarif"], default="text")
    scan.add_argument("--fix", action="store_true", help="print a unified diff that renames wrong names")
    scan.add_argument("--write", action="store_true", help="apply the fixes in place")
    args = parser.parse_args(argv)

    import psycopg  # the CLI's only dependency; imported late so --help works without it

    from . import report

    if args.command == "scan":
        return _scan(args)

    if args.command == "emergency":
        return _emergency(args)

    try:
        with psycopg.connect(args.dsn) as conn:
            if args.command == "export":
                return _export(conn, args)
            sys.stdout.write(report.render_text(report.fetch_report(conn)))
            if args.html:
                page = report.build_html(conn, f"selfheal report: {conn.info.dbname}")
                with open(args.html, "w", encoding="utf-8") as fh:
                    fh.write(page)
                print(f"wrote {args.html}")
    except (psycopg.errors.InvalidSchemaName, psycopg.errors.UndefinedFunction):
        print("selfheal: the selfheal extension is not installed in this database; run "
              "CREATE EXTENSION selfheal CASCADE", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        print(f"selfheal: {exc.diag.message_primary or exc}", file=sys.stderr)
        return 1
    return 0


def _scan(args) -> int:
    """Exit 0: clean; 1: wrong names found; 2: usage or connection error."""
    import psycopg

    from . import scan

    if not os.path.isdir(args.path):
        print(f"selfheal: {args.path} is not a directory", file=sys.stderr)
        return 2
    try:
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            result, texts, snippets = scan.scan(args.path, conn, progress=sys.stderr.isatty())
    except psycopg.Error as exc:
        print(f"selfheal: {exc.diag.message_primary or exc}", file=sys.stderr)
        return 2
    render = {"text": scan.render_text, "json": scan.render_json, "sarif": scan.render_sarif}[args.format]
    if args.fix or args.write:
        patched = scan.fixes(result, texts, snippets)
        if args.write:
            for path, text in patched.items():
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(text)
            print(f"selfheal: fixed {len(patched)} files", file=sys.stderr)
        else:
            sys.stdout.write(scan.unified_diff(args.path, texts, patched))
    else:
        sys.stdout.write(render(result))
    return 1 if result.findings else 0


def _emergency(args) -> int:
    import psycopg

    from . import emergency, logreader

    try:
        entries = logreader.read_whole_log(args.from_log)
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            sys.stdout.write(emergency.build_script(conn, entries))
    except logreader.LogReadError as exc:
        print(f"selfheal: {exc}", file=sys.stderr)
        return 2
    except psycopg.Error as exc:
        print(f"selfheal: {exc.diag.message_primary or exc}", file=sys.stderr)
        return 2
    return 0


def _export(conn, args) -> int:
    from . import export

    migration = export.build(conn)
    text = (export.render_alembic(migration, args.down_revision) if args.format == "alembic"
            else export.render_sql(migration))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"wrote {args.output}: {len(migration.up) - 1} statements", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
