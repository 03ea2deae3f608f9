"""`selfheal export`: every change selfheal applied, as one migration. Client side (psycopg).

The migration states the current effect of the repairs, read from the live catalog, not the
history of DDL: replaying history would bring back what was undone (a compat view rebuilt
after an alias was removed still carried it in an earlier row's DDL).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ..core.planner import COMPAT_SCHEMA, quote_ident, quote_literal

_COLUMNS_SQL = """
SELECT a.id, a.schema_name, a.table_name, a.column_name, a.reason, a.ddl, a.undo_ddl,
       coalesce(a.evidence->>'strategy', '') AS strategy,
       pg_catalog.format_type(att.atttypid, att.atttypmod) AS type,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS default_expr, att.attgenerated::text AS generated
  FROM selfheal.audit a
  JOIN pg_catalog.pg_namespace n ON n.nspname = a.schema_name
  JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = a.table_name
  JOIN pg_catalog.pg_attribute att ON att.attrelid = c.oid AND att.attname = a.column_name AND NOT att.attisdropped
  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = att.attnum
 WHERE a.action = 'add_column' AND a.status = 'applied' AND a.undone_by IS NULL
 ORDER BY a.id
"""

# Raw: LIKE must get \_ (a literal underscore), and "\_" is no Python escape.
_VIEWS_SQL = r"""
SELECT n.nspname, c.relname, pg_catalog.pg_get_viewdef(c.oid, true) AS definition,
       pg_catalog.obj_description(c.oid, 'pg_class') AS comment
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname LIKE 'selfheal\_compat\_%' AND c.relkind = 'v'
 ORDER BY n.nspname, c.relname
"""

_ROUTED_SQL = """
SELECT r.rolname, s.setting, d.setdatabase <> 0 AS in_database
  FROM pg_catalog.pg_db_role_setting d
  JOIN pg_catalog.pg_roles r ON r.oid = d.setrole
  CROSS JOIN LATERAL unnest(d.setconfig) AS s(setting)
 WHERE d.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))
   AND s.setting LIKE 'search_path=%%' AND s.setting LIKE %s
 ORDER BY r.rolname, 3
"""


# The timeouts a migration sets first in its transaction; timeouts() says why in the script.
LOCK_TIMEOUT = "2s"
CATALOG_TIMEOUT = "10s"
REWRITE_TIMEOUT = "30s"

SYNCED = "column + sync trigger + batched backfill"


def timeouts(rewrites: list[str]) -> list[str]:
    """SET LOCAL lock_timeout and statement_timeout, with why. `rewrites`: the tables a STORED
    generated column copies; every other statement of a repair changes the catalog only."""
    lock = ("-- lock_timeout: never wait behind a long transaction while every query on the table waits behind\n"
            "-- this one; on a timeout the whole transaction rolls back: run it again later.\n"
            f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    if rewrites:
        why = (f"-- statement_timeout: a STORED generated column copies {', '.join(rewrites)} under ACCESS "
               "EXCLUSIVE,\n-- seconds for the small table selfheal chose it for; a larger one here is cancelled, "
               "not locked longer.")
        return [lock, f"{why}\nSET LOCAL statement_timeout = '{REWRITE_TIMEOUT}'"]
    why = "-- statement_timeout: each statement changes the catalog only, in milliseconds once it holds its lock."
    return [lock, f"{why}\nSET LOCAL statement_timeout = '{CATALOG_TIMEOUT}'"]


def keeping(statement: str, warnings: dict[str, str]) -> str:
    """The statement under one squawk-ignore comment naming each warning it keeps, and why.
    One comment: squawk reads only the line just before the statement."""
    if not warnings:
        return statement
    return f"-- squawk-ignore {', '.join(warnings)} -- {'; '.join(warnings.values())}\n{statement}"


# Types squawk advises against, kept: a repair gives a column the type the application reads.
_TYPE_WARNINGS = ((r"integer\b", "prefer-bigint-over-int"), (r"smallint\b", "prefer-bigint-over-smallint"),
                  (r"timestamp(\(\d+\))? without time zone", "prefer-timestamp-tz"),
                  (r"character varying\(", "prefer-text-field"),
                  (r'(character\b(?! varying)|"char")', "ban-char-field"))


def add_column(statement: str, col_type: str, stored: bool = False) -> str:
    """An ADD COLUMN selfheal made, with the squawk warnings it keeps."""
    warnings = {rule: f"{col_type} is the type the application reads"
                for pattern, rule in _TYPE_WARNINGS if re.match(pattern, col_type)}
    if stored:
        warnings["adding-field-with-default"] = ("the STORED column's copy is bounded by statement_timeout; "
                                                 "selfheal chose it for a small table")
    return keeping(statement, warnings)


def drop_compat_view(statement: str) -> str:
    """A compat view dropped to be created again in the same transaction."""
    return keeping(statement, {"ban-drop-view": "a compat view holds no data and is created again below, in this "
                                                "transaction; CREATE OR REPLACE cannot drop or rename a column"})


@dataclass
class Migration:
    up: list[str]
    down: list[str]
    notes: list[str]

    @property
    def changes(self) -> int:
        """Statements of `up` that change the schema; the timeouts at its top do not count."""
        code = ("\n".join(line for line in s.splitlines() if not line.lstrip().startswith("--")) for s in self.up)
        return sum(1 for statement in code if not statement.lstrip().upper().startswith("SET "))


def build(conn) -> Migration:
    """The migration for the repairs now in force in the database `conn` is connected to."""
    up, down, notes, rewrites = [], [], [], []
    for row in conn.execute(_COLUMNS_SQL).fetchall():
        audit_id, schema, table, column, reason, ddl, undo_ddl, strategy, col_type, default, generated = row
        qualified = f"{quote_ident(schema)}.{quote_ident(table)}"
        notes.append(f"audit #{audit_id}: {schema}.{table}.{column}: {reason}")
        if strategy == SYNCED:
            # The column, its sync function and trigger, as applied; existing rows need the backfill.
            up += [add_column(s, col_type) if s.startswith("ALTER TABLE") else s for s in _statements(ddl)]
            notes.append(f"  then fill existing rows of {schema}.{table}.{column} in batches after this migration "
                         "(CALL selfheal.backfill() or a batched UPDATE)")
        elif generated == "s":
            up.append(add_column(ddl.rstrip(";"), col_type, stored=True))
            rewrites.append(f"{schema}.{table}")
        else:
            default_sql = f" DEFAULT {default}" if default else ""
            up.append(add_column(f"ALTER TABLE {qualified} ADD COLUMN IF NOT EXISTS {quote_ident(column)} "
                                 f"{col_type}{default_sql}", col_type))
            up.append(f"COMMENT ON COLUMN {qualified}.{quote_ident(column)} IS "
                      + quote_literal(f"added by selfheal: {reason}"))
        drop = [f"ALTER TABLE {qualified} DROP COLUMN IF EXISTS {quote_ident(column)}"]
        if strategy == SYNCED:  # its trigger first: left behind, it would fail every write to the table
            drop[:0] = [s for s in _statements(undo_ddl) if s.startswith(("DROP TRIGGER", "DROP FUNCTION"))]
        down[:0] = [_undoing(s) for s in drop]
    schemas = set()
    for schema, name, definition, comment in conn.execute(_VIEWS_SQL).fetchall():
        if schema not in schemas:
            schemas.add(schema)
            up.append(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
            up.append(f"GRANT USAGE ON SCHEMA {quote_ident(schema)} TO PUBLIC")
        view = f"{quote_ident(schema)}.{quote_ident(name)}"
        up.append(drop_compat_view(f"DROP VIEW IF EXISTS {view}"))
        up.append(f"CREATE VIEW {view} WITH (security_invoker = true) AS\n{definition.rstrip(';')}")
        up.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {view} TO PUBLIC")
        if comment:
            up.append(f"COMMENT ON VIEW {view} IS {quote_literal(comment)}")
        down.insert(0, _undoing(f"DROP VIEW IF EXISTS {view}"))
    for role, setting, in_database in conn.execute(_ROUTED_SQL, (f"%{COMPAT_SCHEMA}%",)).fetchall():
        path = setting.split("=", 1)[1]
        if in_database:  # for the database the migration runs in, whatever it is called there
            alter = quote_literal(f"ALTER ROLE {quote_ident(role)} IN DATABASE %I SET search_path = "
                                  + path.replace("%", "%%"))
            up.append(f"DO $routing$ BEGIN EXECUTE format({alter}, current_database()); END $routing$")
        else:
            up.append(f"ALTER ROLE {quote_ident(role)} SET search_path = {path}")
        notes.append(f"role {role} reads through the compat schemas")
    return Migration(timeouts(rewrites) + up, timeouts([]) + down if down else [], notes)


# What squawk warns of in a downgrade is what it is for: undoing the upgrade.
_UNDOING = (
    ("DROP VIEW", "ban-drop-view", "the downgrade removes the compat view the upgrade made; it holds no data"),
    ("DROP FUNCTION", "ban-drop-function", "the sync function of the column dropped next; nothing else calls it"),
    ("ALTER TABLE", "ban-drop-column", "the downgrade removes the column the upgrade added, with its values"))


def _undoing(statement: str) -> str:
    return keeping(statement, {rule: why for start, rule, why in _UNDOING if statement.startswith(start)})


def _statements(script: str | None) -> list[str]:
    """The statements of an audit row's ddl or undo_ddl, as the server joined them."""
    return [s.rstrip(";") for s in (script or "").split(";\n") if s.strip()]


def render_sql(migration: Migration) -> str:
    header = ["-- selfheal export: the repairs now in force, as one migration. Review before running.",
              *[f"-- {note}" for note in migration.notes], "BEGIN;"]
    return "\n".join(header + [f"{s};" for s in migration.up] + ["COMMIT;"]) + "\n"


def render_alembic(migration: Migration, down_revision: str | None = None) -> str:
    body = render_sql(migration)
    revision = hashlib.sha1(body.encode()).hexdigest()[:12]
    up = "\n".join(f"    op.execute({s!r})" for s in migration.up)
    down = "\n".join(f"    op.execute({s!r})" for s in migration.down) or "    pass"
    notes = "\n".join(migration.notes)
    return f'''"""selfheal export: the repairs now in force.

{notes}
"""
from alembic import op

revision = {revision!r}
down_revision = {down_revision!r}
branch_labels = None
depends_on = None


def upgrade():
{up}


def downgrade():
{down}
'''
