"""Catalog facts for the planner, read through plpy: policy, aliases, tables, compat views, names
taken, a role's search_path and rights."""

from __future__ import annotations

from ..core import authority, catalog, naming, planner
from ..core.planner import Alias, Catalog, Event, Policy, Table
from .adapter import _Db


def load_policy(db: _Db) -> tuple[Policy, dict]:
    settings = {r["name"]: r["value"] for r in db.rows("SELECT name, value FROM selfheal.policy")}
    return Policy.from_settings(settings), settings


_ALIAS_COLUMNS = "id, schema_name, table_name, legacy_name, kind, expression, style, source, writable"
# The active aliases an error about `$1` (relation names) can concern: every relation alias
# (few), and every alias of a table that is named, or that an alias named answers for, or whose
# name a relation alias takes. A database with 1,000 aliases reads a handful.
_ALIASES_CONCERNING = f"""
SELECT {_ALIAS_COLUMNS} FROM selfheal.alias
 WHERE active AND (kind = 'relation' OR table_name = ANY ($1)
       OR table_name IN (SELECT r.legacy_name FROM selfheal.alias r WHERE r.active AND r.kind = 'relation')
       OR (schema_name, table_name) IN (SELECT o.schema_name, o.table_name FROM selfheal.alias o
                                         WHERE o.active AND (o.legacy_name = ANY ($1) OR o.table_name = ANY ($1))))
 ORDER BY id
"""


def _alias_of(r: dict) -> Alias:
    return Alias(r["schema_name"], r["table_name"], r["legacy_name"], kind=r["kind"], expression=r["expression"],
                 style=r["style"], source=r["source"], id=r["id"], writable=r["writable"])


def _load_aliases(db: _Db, active: bool = True) -> tuple[Alias, ...]:
    return tuple(map(_alias_of, db.rows(f"SELECT {_ALIAS_COLUMNS} FROM selfheal.alias WHERE active = $1 ORDER BY id",
                                        ("bool",), (active,))))


def _aliases_of_tables(db: _Db, names) -> tuple[Alias, ...]:
    """Active aliases of the tables of these names, in any schema."""
    return tuple(map(_alias_of, db.rows(f"SELECT {_ALIAS_COLUMNS} FROM selfheal.alias WHERE active "
                                        "AND table_name = ANY ($1) ORDER BY id", ("text[]",), (sorted(names),))))


# Names a compat view must not take: any relation (sequences and composite types too) or type
# of that name in the schema it serves; temporary ones are a session's own.
_NAMES_TAKEN = """
SELECT n.nspname, c.relname AS name FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname = ANY ($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c')
   AND n.nspname !~ '^(selfheal_compat|pg_(toast_)?temp_)'
UNION
SELECT n.nspname, t.typname FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
 WHERE t.typname = ANY ($1) AND t.typrelid = 0
   AND n.nspname !~ '^(selfheal_compat|pg_(toast_)?temp_)'
"""


# Every search_path set with ALTER ROLE [IN DATABASE] or ALTER DATABASE that applies here; role
# is '' for a database's own setting.
_SEARCH_PATH_SETTINGS = """
SELECT coalesce(r.rolname, '') AS role, d.setdatabase <> 0 AS in_database,
       substr(s, length('search_path=') + 1) AS path
  FROM pg_catalog.pg_db_role_setting d
 CROSS JOIN LATERAL unnest(d.setconfig) AS s
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = d.setrole
 WHERE d.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))
   AND s LIKE 'search\\_path=%'
"""


def _search_path_settings(db: _Db) -> list[dict]:
    return db.rows(_SEARCH_PATH_SETTINGS)


def _names_taken(db: _Db, names) -> set[tuple[str, str]]:
    return {(r["nspname"], r["name"]) for r in db.rows(_NAMES_TAKEN, ("text[]",), (sorted(names),))}


_COMPAT_VIEWS = """
SELECT n.nspname AS compat, c.relname, array_agg(a.attname::text ORDER BY a.attnum) AS columns
  FROM pg_catalog.pg_namespace n
  JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relkind = 'v'
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE n.nspname = ANY ($1) AND c.relname = ANY ($2)
 GROUP BY 1, 2
"""


def _compat_views(db: _Db, source_schemas, names) -> dict:
    """(source schema, view name) -> the columns of the compat views of these names, as they are now."""
    by_compat = {planner.compat_schema(s): s for s in source_schemas}
    return {(by_compat[r["compat"]], r["relname"]): tuple(r["columns"])
            for r in db.rows(_COMPAT_VIEWS, ("text[]", "text[]"), (sorted(by_compat), sorted(names)))}


def _tables(db: _Db, names, keys, aliases: tuple[Alias, ...]) -> tuple[Table, ...]:
    # Defaults serve only a compat view's write trigger, and a table has compat views only
    # through its aliases: the defaults of the others are not read (planner.write_trigger_ddl).
    known, defaults_of = db.columns_read, sorted({a.table for a in aliases})

    def read(versions) -> list:
        return db.rows(catalog.tables_sql(), ("text[]", "text[]", "text[]", "text[]", "text[]"),
                       (sorted(names), sorted(keys), catalog.EXCLUDED_SCHEMAS, sorted(versions), defaults_of))
    rows = read(known or ())
    if catalog.columns_unread(rows, known):  # a column list changed since it was read, or is new
        rows = read(())
    return catalog.tables_from_rows(rows, known)


def with_defaults_for(db: _Db, table: Table, aliases) -> Table:
    """The table's facts with its defaults if one of these aliases takes writes: its view's write
    trigger needs them, and a table that had no alias when it was read came without them."""
    if table.defaults_read or not any(a.writable for a in aliases):
        return table
    return next((t for t in _tables(db, {table.name}, (), tuple(aliases)) if t.schema == table.schema), table)


def _aliases_concerning(db: _Db, names) -> tuple[Alias, ...]:
    return tuple(map(_alias_of, db.rows(_ALIASES_CONCERNING, ("text[]",), (sorted(names),))))


def load_catalog(db: _Db, names: set[str], keys: set[str]) -> Catalog:
    """The facts an error about these relation names (and their fold keys) can need. Only what
    concerns them is read, so the cost does not grow with the database's tables or aliases."""
    aliases = _aliases_concerning(db, names)
    related = {a.table for a in aliases if a.legacy_name in names or a.table in names}
    names = set(names) | related
    view_names = names | {a.legacy_name for a in aliases if a.kind == "relation" and a.table in names}
    keys = set(keys) | {naming.fold_key(n) for n in related}
    tables = _tables(db, names, (), aliases)
    # Other spellings are looked for only for names no table has: that is a scan of pg_class.
    keys &= {naming.fold_key(n) for n in names - {t.name for t in tables}}
    if keys:
        found = {(t.schema, t.name) for t in tables}
        spelt_tables = tuple(t for t in _tables(db, (), keys, aliases) if (t.schema, t.name) not in found)
        spelt = {t.name for t in spelt_tables} - names
        if spelt:  # a table found by another spelling: its aliases too
            aliases = _aliases_concerning(db, names | spelt)
            if any(a.table in spelt for a in aliases):  # and so its defaults
                spelt_tables = tuple(t for t in _tables(db, spelt, (), aliases) if (t.schema, t.name) not in found)
        tables += spelt_tables
    served = {t.name for t in tables}
    served |= {a.legacy_name for a in aliases if a.kind == "relation" and a.table in served}
    views = _compat_views(db, {t.schema for t in tables}, served)
    table_names = sorted({t.name for t in tables})
    dropped = frozenset((r["schema_name"], r["table_name"], r["name"]) for r in db.rows(
        "SELECT schema_name, table_name, detail->>'column' AS name FROM selfheal.schema_event "
        "WHERE change = 'column dropped' AND table_name = ANY ($1)", ("text[]",), (table_names,)))
    rejected = {(r["schema_name"], r["table_name"], r["name"], r["action"]): r["audit_id"] for r in db.rows(
        "SELECT schema_name, table_name, name, action, audit_id FROM selfheal.rejection WHERE table_name = ANY ($1)",
        ("text[]",), (table_names,))}
    relations = frozenset(_names_taken(db, view_names))
    return Catalog(tables, aliases, views, dropped, rejected, relations)


def _catalog_for(db: _Db, event: Event) -> Catalog:
    names, keys = planner.candidate_relation_names(event)
    return load_catalog(db, names, keys)


def _role_search_path(db: _Db, role: str) -> str:
    """The search_path the role's new sessions get here: ALTER ROLE ... IN DATABASE, ALTER ROLE,
    ALTER DATABASE, then the server's own setting."""
    settings = {(r["role"], r["in_database"]): r["path"] for r in _search_path_settings(db)}
    for key in ((role, True), (role, False), ("", True)):
        if key in settings:
            return settings[key]
    return _server_search_path(db)


def _server_search_path(db: _Db) -> str:
    # pg_file_settings parses the configuration files at every read (a tenth of a heal), and
    # they change only on reload: read once per call of selfheal's (one heal_error, one heal()).
    if db.server_search_path is None:
        try:
            with db.plpy.subtransaction():
                row = db.one("SELECT setting FROM pg_catalog.pg_file_settings WHERE name = 'search_path' "
                             "AND applied ORDER BY seqno DESC LIMIT 1")
        except db.plpy.SPIError:
            row = None  # pg_file_settings is for superusers
        db.server_search_path = row["setting"] if row else '"$user", public'
    return db.server_search_path


_RIGHTS = """
SELECT r.oid IS NOT NULL AS role_exists,
       r.oid IS NOT NULL AND pg_catalog.has_schema_privilege(r.oid, n.oid, 'USAGE') AS schema_usage,
       ARRAY(SELECT p FROM unnest($4::text[]) AS p
              WHERE r.oid IS NOT NULL AND pg_catalog.has_table_privilege(r.oid, c.oid, p)) AS privileges,
       (SELECT e.extname FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
         WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e'
         LIMIT 1) AS extension
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_roles r ON r.rolname = $1
 WHERE n.nspname = $2 AND c.relname = $3
"""


def _rights(db: _Db, role: str | None, table: Table) -> authority.Rights:
    row = db.one(_RIGHTS, ("text", "text", "text", "text[]"), (role, table.schema, table.name,
                                                               list(authority.PRIVILEGES)))
    if row is None:
        return authority.Rights(role, role_exists=False)
    return authority.Rights(role, row["role_exists"], row["schema_usage"], frozenset(row["privileges"]),
                            row["extension"])


_DATA_CHECK_FACTS = """
SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       t.typnamespace = 'pg_catalog'::pg_catalog.regnamespace AND t.typtype = 'b' AS builtin,
       c.relrowsecurity AS row_security,
       EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class k ON k.oid = i.inhrelid
                WHERE i.inhparent = c.oid AND NOT k.relispartition) AS inherited,
       (SELECT rolsuper OR rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = current_user) AS bypasses_rls,
       -- The planner folds index expressions and predicates, and loads expression statistics,
       -- so any query on such a table can run the owner's immutable functions.
       EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                WHERE (i.indrelid = c.oid OR i.indrelid IN (SELECT relid FROM pg_catalog.pg_partition_tree(c.oid)))
                  AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL))
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_statistic_ext s WHERE s.stxrelid = c.oid AND s.stxexprs IS NOT NULL)
         AS planner_runs_code
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = $2 AND NOT a.attisdropped
  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
 WHERE c.oid = $1::pg_catalog.regclass
"""


def _column_has_data(db: _Db, table: Table, column: str, added_as: dict | None) -> bool:
    """Whether the column holds anything but the default selfheal gave it.

    Nothing the table's owner controls may run here with the caller's rights: the comparison
    is with the default selfheal recorded (never the column's current default), on the
    built-in type selfheal gave it (so only pg_catalog's operators run), and the table is read
    only where no row-level security policy would run for the caller and the planner would
    fold none of the owner's expressions. Otherwise the column counts as holding data, and
    only undo(..., force => true) drops it.
    """
    facts = db.one(_DATA_CHECK_FACTS, ("text", "text"), (table.qualified, column))
    recorded = (added_as or {}).get("type")
    if facts is None or not facts["builtin"] or (recorded and facts["type"] != recorded) or facts["inherited"] \
            or (facts["row_security"] and not facts["bypasses_rls"]) or facts["planner_runs_code"]:
        return True
    ident = planner.quote_ident(column)
    default = (added_as or {}).get("default")
    condition = f"{ident} IS DISTINCT FROM ({default})" if default else f"{ident} IS NOT NULL"
    return bool(db.plpy.execute(f"SELECT EXISTS (SELECT 1 FROM {table.qualified} WHERE {condition}) AS x")[0]["x"])


def _table_facts(db: _Db, schema: str, name: str) -> Table | None:
    return load_catalog(db, {name}, set()).table(schema, name)
