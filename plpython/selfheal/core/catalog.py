"""The catalog facts the planner needs, as one query. Shared by the server (plpy) and the client.

The query takes $1 (exact names), $2 (fold keys), $3 (schemas to leave out), $4 (versions of
column lists already read in this transaction: theirs are not sent again) and $5 (the tables whose defaults are
read: NULL for all); `added` counts the columns selfheal already added to a table, which only
the extension knows.
"""

from __future__ import annotations

import json
from operator import attrgetter

from .planner import Column, Table

EXCLUDED_SCHEMAS = ["pg_catalog", "information_schema", "pg_toast", "selfheal", "selfheal_compat"]

ADDED_BY_SELFHEAL = """SELECT count(*) FROM selfheal.audit au
         WHERE au.action = 'add_column' AND au.status = 'applied' AND au.undone_by IS NULL
           AND au.schema_name = n.nspname AND au.table_name = c.relname"""

_TABLES = """
SELECT n.nspname AS schema_name, c.relname AS table_name, ({rows})::float8 AS row_estimate,
       ({bound})::float8 AS row_bound, ({bytes})::float8 AS total_bytes,
       (SELECT max(attnum) FROM pg_catalog.pg_attribute WHERE attrelid = c.oid AND attnum > 0) AS attnum_high,
       v.columns_version, {wants_defaults} AS defaults_read,
       CASE WHEN v.columns_version = ANY ($4) THEN NULL ELSE v.columns END AS columns,
       -- Key columns are looked up one by one, never by reading all of a wide table's columns.
       (SELECT coalesce(json_agg({attname_of_k} ORDER BY k.ord), '[]')
          FROM pg_catalog.pg_index i
          CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
         WHERE i.indrelid = c.oid AND i.indisprimary)::text AS primary_key,
       (SELECT coalesce(json_agg(DISTINCT a.attname), '[]')
          FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = c.oid AND i.indisvalid)::text AS indexed,
       ({added})::int AS added,
       -- Names of constraints, indexes and owned sequences with the columns they are on: a name
       -- that still carries an old column name is evidence of a rename.
       (SELECT coalesce(json_agg(json_build_object('name', x.name, 'columns', x.columns)), '[]')
          FROM (SELECT k.conname::text AS name,
                       ARRAY(SELECT {attname_of_k} FROM unnest(k.conkey) WITH ORDINALITY AS k(attnum, ord)
                              ORDER BY k.ord) AS columns
                  FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid
                UNION ALL
                SELECT i.indexrelid::pg_catalog.regclass::text,
                       ARRAY(SELECT {attname_of_k} FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                              WHERE k.attnum > 0 ORDER BY k.ord)
                  FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid
                UNION ALL
                SELECT d.objid::pg_catalog.regclass::text,
                       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                              WHERE a.attrelid = c.oid AND a.attnum = d.refobjsubid)
                  FROM pg_catalog.pg_depend d
                 WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = c.oid
                   AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                   AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0) x)::text AS leftovers
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  -- The version of the table's column list within one transaction: every change to a column
  -- (added, dropped, renamed, retyped, its default set or dropped) writes its pg_attribute row
  -- again, with a newer transaction id, so the sums change: always for one or two rows
  -- changed, and for more unless both sums cancel out at once. Sums, not a digest of every
  -- row, and of age(xmin), which is stable within a transaction, not of xmin through text:
  -- it only has to tell the two reads of one repair apart, and a 400-column table's version
  -- costs less. Whether the defaults were read is part of it.
  -- The columns come from the same scan, each as an array of text (name, type, attnum,
  -- default, identity, generated) turned to JSON once: json_build_array looks up the type of
  -- each of its arguments on every row, a third of a 400-column table's first read. They are
  -- built only when the caller knows no versions ($4); a caller that does, and finds one it
  -- does not know, reads again knowing none (columns_unread). Unordered: tables_from_rows
  -- sorts them by attnum for less than the aggregate's sort costs.
  CROSS JOIN LATERAL (SELECT c.oid::text || ':' || count(*) || ':' || sum(pg_catalog.age(a.xmin)) || ':'
                             || sum(pg_catalog.age(a.xmin)::int8 * a.attnum)
                             || CASE WHEN {wants_defaults} THEN ':defaults' ELSE '' END AS columns_version,
                             CASE WHEN pg_catalog.cardinality($4::text[]) = 0 THEN
                             coalesce(pg_catalog.array_to_json(array_agg(ARRAY[
                                 a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnum::text,
                                 {default}, a.attidentity::text, a.attgenerated::text])
                               FILTER (WHERE NOT a.attisdropped AND pg_catalog.cardinality($4::text[]) = 0)),
                               '[]')::text END AS columns
                        FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0) v
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname <> ALL ($3) AND n.nspname NOT LIKE 'pg\\_%'
   -- Names through pg_class's name index. Fold keys ($2: names spelt another way) need a scan
   -- of every relation, which a database of 10,000 tables feels: it runs only if there are any.
   AND (c.relname = ANY ($1)
        OR c.oid = ANY (ARRAY(SELECT x.oid FROM pg_catalog.pg_class x
                               WHERE pg_catalog.cardinality($2::text[]) > 0 AND x.relkind IN ('r', 'p')
                                 AND replace(replace(lower(x.relname), '_', ''), ' ', '') = ANY ($2))))
"""


# A default is deparsed without the table's column names: with them, pg_get_expr reads every
# column of the table for each default, and a table of 400 defaulted columns took 0.5 s a heal.
# Only a generated column's expression names columns, and it is always read. Plain defaults
# only serve writes through a compat view, so they are read only for the tables asked for ($5):
# deparsing 400 of them was a third of reading a wide table.
# pg_attrdef is looked up only for a default that is read.
_WANTS_DEFAULTS = "($5::text[] IS NULL OR c.relname = ANY ($5::text[]))"
DEFAULT_TEXT = """CASE WHEN NOT a.atthasdef THEN NULL
                      WHEN a.attgenerated <> '' OR {wants_defaults} THEN
                           (SELECT pg_catalog.pg_get_expr(d.adbin, CASE WHEN a.attgenerated <> '' THEN d.adrelid ELSE 0 END)
                              FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum) END"""


# Rows by the size of the files now, never by reltuples alone (-1 until the first ANALYZE, and
# stale after bulk loads): the density ANALYZE saw times the pages there are now, as PostgreSQL's
# planner estimates; with no density known, every page full (the most rows a heap page holds).
# Partitions are summed: a rewrite of a partitioned table rewrites every one.
ROW_ESTIMATE = """SELECT coalesce(sum(CASE WHEN l.reltuples > 0 AND l.relpages > 0
                             THEN l.reltuples / l.relpages * pages.now
                             ELSE pages.now * floor((pages.size - 24) / 28) END), 0)
          FROM (SELECT t.relid FROM pg_catalog.pg_partition_tree(c.oid) t WHERE t.isleaf
                UNION SELECT c.oid WHERE c.relkind = 'r') leaf
          -- Sizes and statistics are read per leaf, through pg_class's oid index: a join to
          -- pg_class l was planned as a hash join over every relation of the database (1.6 ms of
          -- a 2.4 ms query in a new database, 2.9 ms among 10,000 tables).
          CROSS JOIN LATERAL (SELECT pg_catalog.pg_relation_size(leaf.relid) / blocks.size AS now, blocks.size
                                FROM (SELECT pg_catalog.current_setting('block_size')::float8 AS size) blocks) pages
          CROSS JOIN LATERAL (SELECT x.reltuples, x.relpages FROM pg_catalog.pg_class x
                               WHERE x.oid = leaf.relid OFFSET 0) l"""


# What a rewrite costs is bounded from the files alone, whatever ANALYZE last saw: every page
# full, and the whole size with TOAST and indexes.
_LEAVES = """(SELECT t.relid FROM pg_catalog.pg_partition_tree(c.oid) t WHERE t.isleaf
                UNION SELECT c.oid WHERE c.relkind = 'r') leaf"""
ROW_BOUND = f"""SELECT coalesce(sum(floor(pg_catalog.pg_relation_size(leaf.relid)
                                        / pg_catalog.current_setting('block_size')::float8)
                                  * floor((pg_catalog.current_setting('block_size')::float8 - 24) / 28)), 0)
          FROM {_LEAVES}"""
TOTAL_BYTES = f"SELECT coalesce(sum(pg_catalog.pg_total_relation_size(leaf.relid)), 0) FROM {_LEAVES}"


# The name of column k.attnum of table c, through pg_attribute's (attrelid, attnum) index.
_ATTNAME_OF_K = """(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                          WHERE a.attrelid = c.oid AND a.attnum = k.attnum)"""


def tables_sql(added: str = ADDED_BY_SELFHEAL) -> str:
    return (_TABLES.replace("{added}", added).replace("{attname_of_k}", _ATTNAME_OF_K).replace("{default}", DEFAULT_TEXT)
            .replace("{wants_defaults}", _WANTS_DEFAULTS).replace("{rows}", ROW_ESTIMATE).replace("{bound}", ROW_BOUND)
            .replace("{bytes}", TOTAL_BYTES))


TABLES_PARAMETERS = ("names", "keys", "excluded", "known", "defaults_of")


def tables_sql_for_client() -> str:
    """The query for psycopg, with named placeholders (TABLES_PARAMETERS); no selfheal.audit is
    read, so it runs where selfheal is not installed."""
    query = tables_sql("0").replace("%", "%%")
    for number, name in reversed(list(enumerate(TABLES_PARAMETERS, 1))):
        query = query.replace(f"${number}", f"%({name})s")
    return query


_ATTNUM = attrgetter("attnum")


def columns_unread(rows, known: dict | None) -> bool:
    """Whether a row came without columns the caller does not have: the query is to be run
    again with no versions known ($4), so that it sends them."""
    return any(r["columns"] is None and r["columns_version"] not in (known or ()) for r in rows)


def tables_from_rows(rows, known: dict | None = None) -> tuple[Table, ...]:
    """Planner facts from the query's rows (dicts, from plpy or psycopg's dict_row). `known` maps
    versions of column lists read before to their columns: a row that did not send its columns
    again takes them from there, and what is read is added to it."""
    tables = []
    for r in rows:
        if r["columns"] is None:
            columns = known[r["columns_version"]]
        else:
            listed = json.loads(r["columns"])
            for column in listed:
                column[2] = int(column[2])  # attnum, sent as text in an array of text
            columns = tuple(sorted(map(Column._make, listed), key=_ATTNUM))
            if known is not None:
                known[r["columns_version"]] = columns
        tables.append(Table(r["schema_name"], r["table_name"], columns, defaults_read=r["defaults_read"],
                            primary_key=tuple(json.loads(r["primary_key"])),
                            row_estimate=r["row_estimate"], row_bound=r["row_bound"], total_bytes=r["total_bytes"],
                            attnum_high=r["attnum_high"] or 0,
                            named_objects=tuple((o["name"], tuple(o["columns"])) for o in json.loads(r["leftovers"])),
                            indexed_columns=frozenset(json.loads(r["indexed"])),
                            columns_added_by_selfheal=r["added"]))
    return tuple(tables)
