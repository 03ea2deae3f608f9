"""The planner decides from facts alone; these tests give it facts and read its decisions."""

from dataclasses import replace

import pytest

from selfheal.core import planner, sqlscan
from selfheal.core.planner import Alias, Catalog, Column, Event, Policy, Table

SESSIONS = Table("public", "sessions", (Column("id", "integer", 1), Column("service_type", "text", 2)),
                 primary_key=("id",), attnum_high=2)
PACKAGES = Table("public", "credit_packages", (Column("id", "integer", 1), Column("credits", "integer", 2)),
                 primary_key=("id",), attnum_high=2)
INVOICE_LINE = Table("public", "invoice_line",
                     (Column("invoice_line_id", "integer", 1), Column("unit_price", "numeric(10,2)", 2)),
                     primary_key=("invoice_line_id",), attnum_high=2)
CATALOG = Catalog((SESSIONS, PACKAGES, INVOICE_LINE))


def missing_column(name, statement, hint=None, catalog=CATALOG, policy=Policy()):
    return planner.plan(Event("42703", f'column "{name}" does not exist', statement, hint), catalog, policy)


def test_missing_jsonb_column_is_added_with_a_constant_default():
    plan = missing_column("recommendation_data", "SELECT recommendation_data FROM sessions")
    assert plan.status == "apply" and plan.action == "add_column"
    assert plan.ddl[0] == ('ALTER TABLE "public"."sessions" ADD COLUMN IF NOT EXISTS "recommendation_data" '
                           "jsonb DEFAULT '{}'::jsonb")
    assert plan.undo_ddl == ['ALTER TABLE "public"."sessions" DROP COLUMN IF EXISTS "recommendation_data"']
    assert "no rewrite" in plan.lock_profile


def test_usage_in_the_statement_overrides_the_name():
    plan = missing_column("retry_count", "SELECT * FROM sessions WHERE retry_count = 'many'")
    assert " text" in plan.ddl[0] and "integer" not in plan.ddl[0]


def test_x_id_beside_text_x_becomes_a_cast_alias_whose_values_are_checked_first():
    plan = missing_column("service_type_id", "SELECT * FROM sessions WHERE service_type_id = 1",
                          'Perhaps you meant to reference the column "sessions.service_type".')
    assert plan.action == "add_alias"
    assert plan.alias.source == "hint"
    assert plan.alias.expression == '"service_type"::integer'  # raises on 'premium', never reads NULL
    assert plan.value_check["source"] == "service_type" and plan.value_check["target"] == "integer"
    assert plan.value_check["rows"] == Policy().value_check_rows
    create = next(d for d in plan.ddl if d.startswith("CREATE VIEW"))
    assert 'CREATE VIEW "selfheal_compat_public"."sessions" WITH (security_invoker = true)' in create
    assert '"service_type",' in create  # the canonical name keeps working
    assert plan.undo_ddl == ['DROP VIEW IF EXISTS "selfheal_compat_public"."sessions"']


def test_qualified_column_resolves_its_alias_from_the_statement():
    plan = planner.plan(Event("42703", "column cp.package_name does not exist",
                              "SELECT cp.package_name FROM credit_packages cp"), CATALOG)
    assert plan.table == PACKAGES and plan.action == "add_column"


def test_legacy_spelling_of_a_column_is_an_alias_not_a_copy():
    plan = missing_column("unitprice", "SELECT UnitPrice, invoice_line_id FROM invoice_line")
    assert plan.action == "add_alias" and plan.alias.expression == '"unit_price"'
    create = next(d for d in plan.ddl if d.startswith("CREATE VIEW"))
    # In its column's place: SELECT * gives the legacy shape, not the new name plus the old.
    assert '"invoice_line_id",\n    "unit_price" AS "unitprice"\n  FROM' in create


TRACK = Table("public", "track", (Column("track_id", "integer", 1), Column("unit_price", "numeric(10,2)", 2)),
              primary_key=("track_id",), attnum_high=2)


def test_a_table_whose_whole_naming_moved_is_shown_in_its_legacy_naming():
    # Chinook's own code: PascalCase without quotes, which PostgreSQL folded to flat names.
    plan = missing_column("unitprice", "SELECT * FROM Track ORDER BY UnitPrice", catalog=Catalog((TRACK,)))
    assert plan.action == "add_alias" and plan.status == "apply"
    assert (plan.alias.kind, plan.alias.legacy_name, plan.alias.style) == ("relation", "track", "flat")
    create = next(d for d in plan.ddl if d.startswith("CREATE VIEW"))
    assert '"track_id" AS "trackid",\n    "unit_price" AS "unitprice"\n  FROM' in create
    assert 'CREATE VIEW "selfheal_compat_public"."track"' in create


def test_a_table_whose_quoted_pascal_case_naming_moved_is_shown_in_it_whole():
    # Code that quotes its PascalCase names ("TrackId") on a table now snake_case throughout.
    plan = missing_column("UnitPrice", 'SELECT * FROM track ORDER BY "UnitPrice", "TrackId"', catalog=Catalog((TRACK,)))
    assert (plan.alias.kind, plan.alias.legacy_name, plan.alias.style) == ("relation", "track", "pascal")
    create = next(d for d in plan.ddl if d.startswith("CREATE VIEW"))
    assert '"track_id" AS "TrackId",\n    "unit_price" AS "UnitPrice"\n  FROM' in create


def test_a_one_word_column_is_restyled_only_when_the_code_quotes_one_so():
    named = replace(TRACK, columns=TRACK.columns + (Column("name", "text", 3),))
    plan = missing_column("UnitPrice", 'SELECT "UnitPrice" FROM track WHERE name > \'\'', catalog=Catalog((named,)))
    assert plan.alias.kind == "column"  # `name` may be read as it is: no evidence for "Name"
    plan = missing_column("UnitPrice", 'SELECT "UnitPrice", "Name" FROM track', catalog=Catalog((named,)))
    assert (plan.alias.kind, plan.alias.style) == ("relation", "pascal")
    assert '"name" AS "Name"' in next(d for d in plan.ddl if d.startswith("CREATE VIEW"))


@pytest.mark.parametrize("statement", [
    'SELECT "UnitPrice", "TrackID" FROM track',  # an acronym: the old naming was not regular
    'SELECT "UnitPrice", track_id FROM track',  # the code uses a new name too
])
def test_quoted_pascal_case_with_an_irregular_or_new_name_beside_it_gets_one_alias(statement):
    plan = missing_column("UnitPrice", statement, catalog=Catalog((TRACK,)))
    assert plan.alias.kind == "column" and plan.alias.expression == '"unit_price"'


@pytest.mark.parametrize("statement", [
    "SELECT * FROM track ORDER BY unitprice",  # written flat: one column may have moved, not the naming
    'SELECT * FROM track ORDER BY "unitprice"',
    "SELECT track_id, UnitPrice FROM Track",  # the code uses a new name too
])
def test_one_legacy_spelling_alone_is_no_evidence_the_naming_moved(statement):
    plan = missing_column("unitprice", statement, catalog=Catalog((TRACK,)))
    assert plan.alias.kind == "column" and plan.alias.expression == '"unit_price"'


def test_a_table_named_in_snake_case_by_the_code_mixed_its_naming():
    plan = missing_column("UnitPrice", 'UPDATE invoice_line SET quantity = 0 WHERE "UnitPrice" > 1')
    assert plan.alias.kind == "column"


def test_naming_is_not_taken_as_moved_when_the_code_also_uses_the_new_names():
    plan = missing_column("unitprice", "SELECT invoice_line_id, UnitPrice FROM invoice_line")
    assert plan.alias.kind == "column"
    mixed = replace(INVOICE_LINE, columns=INVOICE_LINE.columns + (Column("InvoiceDate", "date", 3),))
    plan = missing_column("unitprice", "SELECT UnitPrice FROM invoice_line", catalog=Catalog((mixed,)))
    assert plan.alias.kind == "column"  # not snake_case throughout: no naming to move back to


def test_an_acronym_the_code_quotes_is_served_as_written():
    orders = Table("public", "orders", (Column("id", "integer", 1), Column("account_id", "integer", 2)), ("id",))
    plan = missing_column("AccountID", 'SELECT "AccountID" FROM orders', catalog=Catalog((orders,)))
    assert plan.alias.kind == "column" and plan.alias.legacy_name == "AccountID"
    create = next(d for d in plan.ddl if d.startswith("CREATE VIEW"))
    assert '"id",\n    "account_id" AS "AccountID"\n  FROM' in create


def test_a_quoted_legacy_name_with_a_space_is_served():
    orders = Table("public", "order_details", (Column("id", "integer", 1),), ("id",))
    plan = planner.plan(Event("42P01", 'relation "Order Details" does not exist', 'SELECT * FROM "Order Details"'),
                        Catalog((orders,)))
    assert plan.status == "apply" and plan.alias.legacy_name == "Order Details"
    assert any(d.startswith('CREATE VIEW "selfheal_compat_public"."Order Details"') for d in plan.ddl)
    plan = planner.plan(Event("42P01", 'relation "Order\tDetails" does not exist', 'SELECT * FROM "Order\tDetails"'),
                        Catalog((orders,)))
    assert plan.status == "refused" and not plan.ddl


def test_new_code_of_a_routed_role_gets_the_current_name_beside_the_legacy_one():
    renamed = Alias("public", "invoice_line", "unitprice", expression='"unit_price"', source="rename", id=1)
    catalog = Catalog((INVOICE_LINE,), (renamed,))
    plan = missing_column("unit_price", "SELECT unit_price FROM invoice_line", catalog=catalog)
    assert plan.status == "apply" and plan.alias.source == "current" and plan.alias.expression == '"unit_price"'
    create = next(d for d in plan.ddl if d.startswith("CREATE VIEW"))
    assert '"unit_price" AS "unitprice",\n    "unit_price"\n  FROM' in create  # after the table's own columns


def test_the_rest_of_a_statements_legacy_names_are_found_at_once():
    invoice = Table("public", "invoice", (Column("invoice_id", "integer", 1), Column("total", "numeric", 2)),
                    ("invoice_id",))
    catalog = Catalog((INVOICE_LINE, invoice))
    statement = ("SELECT Invoice.InvoiceId, SUM(InvoiceLine.UnitPrice) AS CalculatedTotal, Invoice.Total AS Total "
                 "FROM InvoiceLine INNER JOIN Invoice ON InvoiceLine.InvoiceLineId = Invoice.InvoiceId "
                 "GROUP BY Invoice.InvoiceId, Invoice.Total")
    found = planner.remaining_legacy_names(Event("42P01", 'relation "invoiceline" does not exist', statement), catalog)
    assert found == [("42P01", 'relation "invoiceline" does not exist'),
                     ("42703", "column invoice.invoiceid does not exist")]
    served = Catalog(catalog.tables, (Alias("public", "invoice_line", "invoiceline", kind="relation", style="flat"),
                                      Alias("public", "invoice", "invoice", kind="relation", style="flat")))
    assert planner.remaining_legacy_names(Event("42P01", "x", statement), served) == []
    typo = "SELECT Invoice.InvoiceId, Invoice.Totl FROM Invoice"
    assert planner.remaining_legacy_names(Event("42P01", "x", typo), catalog) == [
        ("42703", "column invoice.invoiceid does not exist")]  # a typo is no legacy spelling: never followed


def test_a_using_name_is_followed_up_on_each_side_of_its_join_and_a_cte_qualifier_through_its_query():
    invoice = Table("public", "invoice", (Column("invoice_id", "integer", 1), Column("customer_id", "integer", 2)),
                    ("invoice_id",))
    customer = Table("public", "customer", (Column("customer_id", "integer", 1),), ("customer_id",))
    statement = 'SELECT count(*) FROM invoice JOIN customer USING ("CustomerId")'
    event = Event("42703", 'column "CustomerId" specified in USING clause does not exist in left table', statement)
    catalog = Catalog((invoice, customer))
    assert planner.remaining_legacy_names(event, catalog) == [
        ("42703", 'column "CustomerId" specified in USING clause does not exist in left table'),
        ("42703", 'column "CustomerId" specified in USING clause does not exist in right table')]
    left_served = Catalog(catalog.tables, (Alias("public", "invoice", "CustomerId", expression='"customer_id"',
                                                 source="rename"),))
    assert planner.remaining_legacy_names(event, left_served) == [
        ("42703", 'column "CustomerId" specified in USING clause does not exist in right table')]
    plan = planner.plan(Event("42703", 'column "CustomerId" specified in USING clause does not exist in right table',
                              statement), left_served)
    assert plan.status == "apply" and plan.table.name == "customer"
    assert '"customer_id" AS "CustomerId"' in next(d for d in plan.ddl if d.startswith("CREATE VIEW"))
    cte = "WITH t AS (SELECT * FROM customer) SELECT t.CustomerId FROM t"
    assert planner.remaining_legacy_names(Event("42703", "x", cte), catalog) == [
        ("42703", "column t.customerid does not exist")]
    renamed = "WITH t AS (SELECT customer_id AS id FROM customer) SELECT t.CustomerId FROM t"
    assert planner.remaining_legacy_names(Event("42703", "x", renamed), catalog) == []
    assert planner.plan(Event("42703", "column t.customerid does not exist", renamed), catalog).status == "needs_review"


def test_legacy_relation_name_gets_a_view_with_legacy_column_names():
    plan = planner.plan(Event("42P01", 'relation "InvoiceLine" does not exist', 'SELECT * FROM "InvoiceLine"'),
                        CATALOG)
    assert plan.action == "add_alias" and plan.alias.kind == "relation" and plan.alias.style == "pascal"
    create = next(d for d in plan.ddl if d.startswith("CREATE VIEW"))
    assert '"unit_price" AS "UnitPrice"' in create and '"selfheal_compat_public"."InvoiceLine"' in create


def test_missing_table_without_evidence_is_never_created():
    plan = planner.plan(Event("42P01", 'relation "orders" does not exist', "SELECT * FROM orders"), CATALOG)
    assert plan.status == "needs_review" and not plan.ddl


@pytest.mark.parametrize("state, message", [("P0001", "Cost calculation error"), ("22012", "division by zero")])
def test_errors_that_are_not_schema_errors_are_never_fixed(state, message):
    plan = planner.plan(Event(state, message, "SELECT 1"), CATALOG)
    assert plan.status == "not_schema" and not plan.ddl


def test_hostile_name_is_refused_without_ddl():
    plan = missing_column('x"; DROP TABLE sessions; --', 'SELECT "x""; DROP TABLE sessions; --" FROM sessions')
    assert plan.status == "refused" and not plan.ddl


def test_budget_stops_new_columns():
    full = Table("public", "sessions", SESSIONS.columns, ("id",), attnum_high=2, columns_added_by_selfheal=3)
    plan = missing_column("junk_1", "SELECT junk_1 FROM sessions", catalog=Catalog((full,)),
                          policy=Policy(column_budget_per_table=3))
    assert plan.status == "refused" and "budget" in plan.reason


def test_headroom_below_1600_columns_is_kept():
    crowded = Table("public", "sessions", SESSIONS.columns, ("id",), attnum_high=1550)
    plan = missing_column("junk", "SELECT junk FROM sessions", catalog=Catalog((crowded,)))
    assert plan.status == "refused" and "1600" in plan.reason


def test_a_propose_mode_records_the_repair_with_its_ddl_for_approval():
    plan = missing_column("notes_count", "SELECT notes_count FROM sessions", policy=Policy(add_column="propose"))
    assert plan.status == "pending_approval" and "policy add_column is propose" in plan.reason
    assert plan.action == "add_column" and plan.ddl  # what approve() would run
    observed = missing_column("notes_count", "SELECT notes_count FROM sessions", policy=Policy(add_column="observe"))
    assert observed.status == "observed"
    approved = planner.plan(Event("42703", 'column "notes_count" does not exist', "SELECT notes_count FROM sessions"),
                            CATALOG,
                            Policy(add_column="propose"), approved=True)
    assert approved.status == "apply" and approved.ddl == plan.ddl
    assert Policy.from_settings({"alias": "AUTO", "add_column": "sometimes"}) == Policy(add_column="propose")


def test_ambiguous_table_needs_review():
    plan = missing_column("notes", "SELECT notes FROM sessions, credit_packages")
    assert plan.status == "needs_review" and not plan.ddl


def test_already_present_column_is_resolved_without_ddl():
    plan = missing_column("service_type", "SELECT service_type FROM sessions")
    assert plan.status == "resolved" and not plan.ddl


def test_compat_view_is_rebuilt_when_a_column_is_added_under_it():
    alias = Alias("public", "sessions", "service_type_id", expression='"service_type"')
    plan = missing_column("notes", "SELECT notes FROM sessions", catalog=Catalog((SESSIONS,), (alias,)))
    create = next(d for d in plan.ddl if d.startswith("CREATE VIEW"))
    assert '"notes"' in create
    assert plan.undo_ddl[-1].endswith('DROP COLUMN IF EXISTS "notes"')
    assert '"notes"' not in next(d for d in plan.undo_ddl if d.startswith("CREATE VIEW"))


def test_declared_alias_shadows_a_real_column_and_replaces_its_namesake():
    table = Table("public", "credit_packages", PACKAGES.columns + (Column("package_name", "text", 3),), ("id",))
    old = Alias("public", "credit_packages", "package_name", expression="'old'")
    new = Alias("public", "credit_packages", "package_name", expression="('Package ' || credits)")
    plan = planner.plan_declared_alias(table, new, Catalog((table,), (old,)))
    create = next(d for d in plan.ddl if d.startswith("CREATE VIEW"))
    assert "('Package ' || credits) AS \"package_name\"" in create and "'old'" not in create
    assert create.count('"package_name"') == 1


def test_a_write_to_a_cast_is_proposed_as_write_triggers_and_any_other_derived_name_is_read_only():
    alias = Alias("public", "sessions", "service_type_id", expression=planner.derived_cast("service_type", "text", "integer")[0])
    event = Event("0A000", 'cannot insert into column "service_type_id" of view "sessions"',
                  "INSERT INTO sessions(service_type_id) VALUES (3)")
    plan = planner.plan(event, Catalog((SESSIONS,), (alias,)))
    assert plan.status == "pending_approval" and plan.alias.writable and "ON CONFLICT" in plan.reason
    function = next(d for d in plan.ddl if d.startswith("CREATE FUNCTION"))
    assert '(NEW."service_type_id")::text' in function
    assert any(d.startswith("CREATE TRIGGER selfheal_write INSTEAD OF INSERT OR UPDATE") for d in plan.ddl)
    assert any(d.startswith("DROP FUNCTION IF EXISTS") for d in plan.undo_ddl)
    computed = Alias("public", "sessions", "kind_label", expression='upper("service_type")')
    plan = planner.plan(Event("0A000", 'cannot insert into column "kind_label" of view "sessions"',
                              "INSERT INTO sessions(kind_label) VALUES ('x')"), Catalog((SESSIONS,), (computed,)))
    assert plan.status == "needs_review" and "write service_type instead" in plan.reason


def test_write_triggers_are_never_made_from_a_table_whose_defaults_were_left_unread():
    # An omitted column would be written as NULL, not the table's default: refuse instead.
    outputs = [("id", '"id"'), ("kind", '"service_type"')]
    assert any("CREATE TRIGGER" in d for d in planner.write_trigger_ddl(SESSIONS, "sessions", outputs))
    with pytest.raises(ValueError, match="defaults of public.sessions were not read"):
        planner.write_trigger_ddl(replace(SESSIONS, defaults_read=False), "sessions", outputs)


def test_an_alias_an_administrator_declares_as_a_cast_is_written_back_too():
    # add_alias stores `service_type::integer` as `(service_type::integer)`: unquoted, in parentheses.
    column = SESSIONS.column("service_type")
    for expression in ("(service_type::integer)", '(("service_type")::integer)', "(Service_Type :: integer)"):
        assert planner.inverse_of(expression, SESSIONS) == (column, "integer"), expression
    assert planner.inverse_of('"service_type"::double precision', SESSIONS) == (column, "double precision")
    for expression in ("(service_type::integer + 1)", "(upper(service_type))::text", "(nosuch::integer)",
                       "(service_type)", "service_type::varchar(3)", "(service_type::boolean OR enabled)",
                       "(service_type::integer IS NULL)", '(service_type::text COLLATE "C")'):
        assert planner.inverse_of(expression, SESSIONS) is None, expression
    declared = Alias("public", "sessions", "kind_label", expression="(upper(service_type) || 'x')", source="user")
    plan = planner.plan(Event("0A000", 'cannot insert into column "kind_label" of view "sessions"',
                              "INSERT INTO sessions(kind_label) VALUES ('x')"), Catalog((SESSIONS,), (declared,)))
    assert plan.status == "needs_review" and "write service_type instead" in plan.reason
    odd = replace(SESSIONS, columns=SESSIONS.columns + (Column("upper", "text", 9), Column("text", "text", 10)))
    assert planner.source_columns("(upper(service_type)::text)", odd) == ["service_type"]


def test_copy_into_a_compat_view_is_proposed_as_write_triggers_and_a_users_own_view_is_left_alone():
    alias = Alias("public", "sessions", "kind", expression='"service_type"', source="rename")
    plan = planner.plan(Event("42809", 'cannot copy to view "sessions"', "COPY sessions FROM STDIN"),
                        Catalog((SESSIONS,), (alias,)))
    assert plan.status == "pending_approval" and plan.alias.writable
    other = planner.plan(Event("42809", 'cannot copy to view "report"', "COPY report FROM STDIN"),
                         Catalog((SESSIONS,), (alias,)))
    assert other.status == "not_schema"


def test_compat_search_path_puts_each_schemas_compat_schema_just_before_it_once():
    assert planner.compat_search_path(None, "app") == \
        '"selfheal_compat_app", "$user", "selfheal_compat_public", "public"'
    routed = planner.compat_search_path("tenant_a, public, pg_catalog", "app")
    assert routed == '"selfheal_compat_tenant_a", "tenant_a", "selfheal_compat_public", "public", "pg_catalog"'
    assert planner.compat_search_path(routed, "app") is None
    assert planner.compat_search_path('selfheal_compat, public', "app") == '"selfheal_compat_public", "public"'
    assert planner.uncompat_search_path(routed) == '"tenant_a", "public", "pg_catalog"'
    assert planner.uncompat_search_path("public") is None
    assert planner.compat_schema("x" * 60).startswith("selfheal_compat_") and len(planner.compat_schema("x" * 60)) < 63


def test_derived_cast_counts_values_beyond_the_types_bounds_as_unconvertible():
    _, condition = planner.derived_cast("x", "text", "integer")
    assert "NOT BETWEEN -2147483648 AND 2147483647" in condition and "::numeric" in condition
    _, condition = planner.derived_cast("x", "character varying", "bigint")
    assert "9223372036854775807" in condition
    assert planner.derived_cast("x", "integer", "bigint") == ('"x"::bigint', None)  # widening always fits


def test_judge_values_refuses_a_derived_name_when_any_value_does_not_convert():
    plan = missing_column("service_type_id", "SELECT service_type_id FROM sessions")
    refused = planner.judge_values(plan, checked=3, unconvertible=1)
    assert refused.status == "needs_review" and refused.ddl == []
    assert "1 of the 3 rows checked" in refused.reason and refused.evidence["unconvertible"] == 1
    served = planner.judge_values(plan, checked=3, unconvertible=0)
    assert served.status == "apply" and served.evidence["values_checked"] == 3
    assert "values_unchecked" not in served.evidence
    partial = planner.judge_values(plan, checked=plan.value_check["rows"], unconvertible=0)
    assert "raises when read" in partial.evidence["values_unchecked"]


def test_an_in_table_derived_column_refuses_writes_that_its_source_does_not_give():
    policy = Policy(derived_columns="table", generated_column_row_limit=0)
    big = replace(SESSIONS, row_bound=10**7, row_estimate=10**7, total_bytes=10**9)
    plan = planner.plan(Event("42703", 'column "service_type_id" does not exist',
                              "SELECT service_type_id FROM sessions"), Catalog((big,)), policy)
    function = next(d for d in plan.ddl if d.startswith("CREATE FUNCTION"))
    assert "NEW.\"service_type_id\" IS DISTINCT FROM selfheal_derived THEN RAISE EXCEPTION" in function
    assert "write service_type instead" in function and "generated_always" in function
    assert plan.value_check is not None


def test_column_added_by_a_migration_refreshes_a_stale_compat_view():
    alias = Alias("public", "sessions", "service_type_id", expression='"service_type"')
    migrated = Table("public", "sessions", SESSIONS.columns + (Column("plan", "text", 3),), ("id",), attnum_high=3)
    built_before = {"sessions": ("id", "service_type", "service_type_id")}
    plan = missing_column("plan", "SELECT plan FROM sessions", catalog=Catalog((migrated,), (alias,), built_before))
    assert (plan.status, plan.action) == ("apply", "refresh_compat")
    assert '"plan"' in next(d for d in plan.ddl if d.startswith("CREATE VIEW"))
    current = {("public", "sessions"): ("id", "service_type", "plan", "service_type_id")}
    assert missing_column("plan", "SELECT plan FROM sessions",
                          catalog=Catalog((migrated,), (alias,), current)).status == "resolved"


def test_the_same_table_name_in_two_schemas_gets_a_compat_view_in_each_schemas_own_compat_schema():
    other = Table("billing", "sessions", SESSIONS.columns, ("id",))
    taken = Alias("billing", "sessions", "legacy", expression='"id"')
    plan = missing_column("service_type_id", "SELECT service_type_id FROM public.sessions",
                          catalog=Catalog((SESSIONS, other), (taken,)))
    assert plan.status == "apply"
    assert [d for d in plan.ddl if d.startswith("CREATE VIEW")][0].startswith(
        'CREATE VIEW "selfheal_compat_public"."sessions"')


def test_a_legacy_relation_name_never_hides_a_relation_of_its_schema():
    orders = Table("public", "order_details", (Column("id", "integer", 1),), ("id",))
    plan = planner.plan(Event("42P01", 'relation "orderdetails" does not exist', "SELECT * FROM orderdetails"),
                        Catalog((orders,), relations=frozenset({("public", "orderdetails")})))
    assert plan.status == "needs_review" and "would hide public.orderdetails" in plan.reason
    elsewhere = Catalog((orders,), relations=frozenset({("tenant_a", "orderdetails")}))
    assert planner.plan(Event("42P01", 'relation "orderdetails" does not exist', "SELECT * FROM orderdetails"),
                        elsewhere).status == "apply"


def test_a_name_in_two_schemas_is_not_guessed():
    other = Table("billing", "sessions", SESSIONS.columns, ("id",))
    plan = missing_column("notes", "SELECT notes FROM sessions", catalog=Catalog((SESSIONS, other)))
    assert plan.status == "needs_review" and "ambiguous" in plan.reason


def test_schema_qualified_legacy_relation_needs_review():
    plan = planner.plan(Event("42P01", 'relation "public.InvoiceLine" does not exist',
                              'SELECT * FROM public."InvoiceLine"'), CATALOG)
    assert plan.status == "needs_review" and "unqualified" in plan.reason


def test_in_table_derived_column_is_stored_only_below_the_row_limit():
    small = Table("public", "sessions", SESSIONS.columns, ("id",), row_estimate=500, row_bound=582,
                  total_bytes=40_000, attnum_high=2)
    plan = missing_column("service_type_id", "SELECT service_type_id FROM sessions", catalog=Catalog((small,)),
                          policy=Policy(derived_columns="table", generated_column_row_limit=1000))
    assert plan.action == "add_column" and "GENERATED ALWAYS AS" in plan.ddl[0] and plan.backfill is None
    assert "rewrites at most 582 rows" in plan.lock_profile

    # Judged by what the files can hold, never by a stale ANALYZE: few rows seen, many pages now.
    stale = Table("public", "sessions", SESSIONS.columns, ("id",), row_estimate=6, row_bound=5e6,
                  total_bytes=2e8, attnum_high=2)
    plan = missing_column("service_type_id", "SELECT service_type_id FROM sessions", catalog=Catalog((stale,)),
                          policy=Policy(derived_columns="table", generated_column_row_limit=1000))
    assert not any("GENERATED" in d for d in plan.ddl)
    toasted = Table("public", "sessions", SESSIONS.columns, ("id",), row_estimate=3, row_bound=291,
                    total_bytes=5e8, attnum_high=2)  # three rows, half a gigabyte of TOAST
    plan = missing_column("service_type_id", "SELECT service_type_id FROM sessions", catalog=Catalog((toasted,)),
                          policy=Policy(derived_columns="table", generated_column_row_limit=1000))
    assert not any("GENERATED" in d for d in plan.ddl)

    large = Table("public", "sessions", SESSIONS.columns, ("id",), row_estimate=5e6, row_bound=6e6, attnum_high=2)
    plan = missing_column("service_type_id", "SELECT service_type_id FROM sessions", catalog=Catalog((large,)),
                          policy=Policy(derived_columns="table", generated_column_row_limit=1000))
    assert plan.ddl[0] == 'ALTER TABLE "public"."sessions" ADD COLUMN IF NOT EXISTS "service_type_id" integer'
    assert not any("GENERATED" in d for d in plan.ddl) and "CREATE TRIGGER" in plan.ddl[3]
    assert plan.ddl[2] == 'REVOKE ALL ON FUNCTION "selfheal_compat"."%s"() FROM PUBLIC' % planner.sync_function_name(
        large, "service_type_id")
    assert 'NEW."service_type"' in plan.ddl[1] and plan.backfill == {"key": "id", "expression": plan.backfill["expression"]}
    assert plan.undo_ddl[0].startswith("DROP TRIGGER") and plan.undo_ddl[-1].endswith('DROP COLUMN IF EXISTS "service_type_id"')
    # A row that already holds what the source gives (each row backfill() writes) never enters PL/pgSQL.
    assert 'FOR EACH ROW WHEN (NEW."service_type_id" IS DISTINCT FROM (' in plan.ddl[3]


def test_a_sync_trigger_on_an_expression_with_a_subquery_fires_on_every_row():
    large = Table("public", "sessions", SESSIONS.columns, ("id",), row_estimate=5e6, row_bound=6e6, attnum_high=2)
    plan = planner.plan_derived_column(large, "kind_count", "bigint",
                                       "(SELECT count(*) FROM kinds k WHERE k.name = service_type)", ["service_type"],
                                       Policy(generated_column_row_limit=1000), {})
    trigger = next(d for d in plan.ddl if d.startswith("CREATE TRIGGER"))
    assert " WHEN " not in trigger and trigger.endswith("FOR EACH ROW EXECUTE FUNCTION %s()" % (
        '"selfheal_compat"."%s"' % planner.sync_function_name(large, "kind_count")))


def test_large_table_without_a_single_column_key_is_not_backfilled():
    keyless = Table("public", "sessions", SESSIONS.columns, (), row_estimate=5e6, row_bound=6e6, attnum_high=2)
    plan = missing_column("service_type_id", "SELECT service_type_id FROM sessions", catalog=Catalog((keyless,)),
                          policy=Policy(derived_columns="table", generated_column_row_limit=1000))
    assert plan.status == "needs_review" and "primary key" in plan.reason


def test_an_error_raised_inside_a_function_is_never_repaired():
    event = Event("42703", 'column "forged" of relation "sessions" does not exist',
                  "DO $$BEGIN RAISE EXCEPTION 'x'; END$$", context="PL/pgSQL function inline_code_block line 1 at RAISE",
                  source="log")
    plan = planner.plan(event, CATALOG)
    assert plan.status == "needs_review" and "inline_code_block" in plan.reason


def test_a_statement_that_does_not_name_the_identifier_is_no_evidence():
    for statement in ["SELECT 'ghost' FROM sessions", "SELECT 1 FROM sessions -- ghost", "SELECT $1 FROM sessions"]:
        plan = missing_column("ghost", statement)
        assert plan.status == "needs_review" and "does not name" in plan.reason, statement
    assert missing_column("ghost", 'SELECT "ghost" FROM sessions WHERE "ghost" > 2').status == "apply"


def test_a_log_entry_without_its_statement_is_never_repaired():
    event = Event("42703", 'column "is_x" of relation "sessions" does not exist', None, source="log")
    assert planner.plan(event, CATALOG).status == "needs_review"
    assert planner.plan(Event("42703", event.message), CATALOG).status == "apply"  # a client said so itself


def test_the_default_selfheal_gave_a_column_is_recorded_for_undo():
    plan = missing_column("is_active", "SELECT is_active FROM sessions")
    assert plan.evidence["added_as"] == {"type": "boolean", "default": "false"}


def test_the_relations_a_plan_locks_are_its_table_and_the_views_it_drops():
    plan = missing_column("recommendation_data", "SELECT recommendation_data FROM sessions",
                          catalog=Catalog((SESSIONS,), aliases=(Alias("public", "sessions", "legacy", expression='"id"'),)))
    assert planner.relations_to_lock(plan) == ['"public"."sessions"', '"selfheal_compat_public"."sessions"']
    view_only = missing_column("package_name", "SELECT package_name FROM credit_packages",
                               catalog=Catalog((Table("public", "credit_packages",
                                                      (Column("PackageName", "text", 1),)),)))
    assert view_only.action == "add_alias"
    assert planner.relations_to_lock(view_only) == []  # a first view: nothing exists to wait for


USERS = Table("public", "users", (Column("id", "integer", 1), Column("name", "text", 2), Column("email", "text", 3),
                                  Column("is_admin", "boolean", 4), Column("state", "text", 5)),
              primary_key=("id",), attnum_high=5)


def users_plan(name, statement, hint=None, catalog=Catalog((USERS,)), **kwargs):
    return planner.plan(Event("42703", f'column "{name}" does not exist', statement, hint), catalog, Policy(**kwargs))


def test_a_probable_typo_is_proposed_as_an_alias_never_added_as_a_column():
    plan = users_plan("nmae", "SELECT nmae FROM users")
    assert plan.status == "pending_approval" and plan.action == "add_alias"
    assert plan.alias.expression == '"name"' and "did the code mean public.users.name?" in plan.reason
    assert users_plan("emial", "UPDATE users SET emial = 'x'").status == "pending_approval"


def test_the_hint_names_the_column_even_when_the_spelling_shares_nothing():
    plan = users_plan("status", "SELECT id FROM users WHERE status = 'active'",
                      hint='Perhaps you meant to reference the column "users.state".')
    assert plan.status == "pending_approval" and plan.alias.expression == '"state"'


def test_a_missing_column_in_a_writes_predicate_is_only_proposed():
    plan = users_plan("archived", "DELETE FROM users WHERE archived = false")
    assert plan.status == "pending_approval" and plan.action == "add_column"
    assert "row choice" in plan.reason
    assert users_plan("archived", "SELECT id FROM users WHERE archived = false").status == "apply"


def test_a_column_the_timeline_saw_dropped_is_never_added_again():
    catalog = Catalog((USERS,), dropped=frozenset({("public", "users", "nickname")}))
    plan = users_plan("nickname", "SELECT nickname FROM users", catalog=catalog)
    assert plan.status == "needs_review" and "was dropped" in plan.reason and not plan.ddl


def test_an_unqualified_name_in_a_join_is_never_given_to_the_table_that_happens_to_match():
    orders = Table("public", "orders", (Column("id", "integer", 1), Column("order_status", "text", 2)))
    customers = Table("public", "customers", (Column("id", "integer", 1), Column("status", "text", 2)))
    plan = planner.plan(Event("42703", 'column "Status" does not exist',
                              'SELECT o.id, "Status" FROM orders o JOIN customers c ON c.id = o.id'),
                        Catalog((orders, customers)))
    assert plan.status == "pending_approval" and "table chosen among several" in plan.reason


def test_a_rejected_repair_is_refused_until_approved():
    catalog = Catalog((USERS,), rejected={("public", "users", "bio", "add_column"): 7})
    plan = users_plan("bio", "SELECT bio FROM users", catalog=catalog)
    assert plan.status == "refused" and "selfheal.approve(7)" in plan.reason
    approved = planner.plan(Event("42703", 'column "bio" does not exist', "SELECT bio FROM users"), catalog,
                            approved=True)
    assert approved.status == "apply"


def test_modes_govern_each_action_class_and_conclusive_evidence_stays_automatic():
    assert missing_column("recommendation_data", "SELECT recommendation_data FROM sessions").status == "apply"
    derived = missing_column("service_type_id", "SELECT id FROM sessions WHERE service_type_id = 1",
                             policy=Policy(derived_alias="propose"))
    assert derived.status == "pending_approval" and "policy derived_alias is propose" in derived.reason
    spelled = planner.plan(Event("42703", 'column "UnitPrice" does not exist', 'SELECT "UnitPrice" FROM invoice_line'),
                           CATALOG, Policy(derived_alias="propose"))
    assert spelled.status == "apply"  # a plain rename alias is governed by `alias`, still auto


def test_a_leftover_name_is_evidence_of_a_rename_never_of_a_new_column():
    orders = Table("public", "orders", (Column("id", "integer", 1), Column("client_id", "integer", 2)),
                   named_objects=(("orders_pkey", ("id",)), ("orders_customer_id_fkey", ("client_id",))))
    plan = planner.plan(Event("42703", 'column "customer_id" does not exist', "SELECT customer_id FROM orders"),
                        Catalog((orders,)))
    assert plan.status == "pending_approval" and plan.action == "add_alias"
    assert plan.alias.expression == '"client_id"' and "orders_customer_id_fkey" in plan.reason


def test_a_legacy_spelling_in_a_writes_where_reads_real_values_so_it_is_served():
    plan = planner.plan(Event("42703", 'column "UnitPrice" does not exist',
                              'UPDATE invoice_line SET unit_price = 1 WHERE "UnitPrice" > 2 RETURNING "UnitPrice"'),
                        CATALOG)
    assert plan.status == "apply" and plan.action == "add_alias"


def test_a_varchar_source_with_a_length_is_a_text_type():
    expression, condition = planner.derived_cast("code", "character varying(20)", "integer")
    assert expression == '"code"::integer' and condition is not None


def event_with(statement, *related, name="gift_wrap"):
    return Event("42703", f'column "{name}" does not exist', statement, related_statements=related)


def test_a_type_the_application_declares_decides_a_bare_select_lists_column():
    statement = sqlscan.declare_types("SELECT gift_wrap FROM sessions", {"gift_wrap": "boolean"})
    plan = planner.plan(event_with(statement), CATALOG)
    assert "gift_wrap\" boolean DEFAULT false" in plan.ddl[0]
    assert plan.evidence["type"] == "the application declares it as boolean"


def test_another_statement_of_the_same_error_types_the_column():
    plan = planner.plan(event_with("SELECT gift_wrap FROM sessions",
                                   "UPDATE sessions SET gift_wrap = %s::boolean WHERE id = 1"), CATALOG)
    assert "gift_wrap\" boolean" in plan.ddl[0]


def test_statements_that_disagree_on_the_type_are_a_review():
    plan = planner.plan(event_with("SELECT gift_wrap FROM sessions WHERE gift_wrap = true",
                                   "SELECT gift_wrap FROM sessions WHERE gift_wrap = 'yes'"), CATALOG)
    assert plan.status == "needs_review" and "disagree" in plan.reason


def test_a_column_with_no_type_evidence_is_only_proposed_and_says_why():
    plan = planner.plan(event_with("SELECT gift_wrap FROM sessions"), CATALOG)
    assert plan.status == "pending_approval" and "its type is unknown" in plan.reason
    assert '"gift_wrap" text' in plan.ddl[0] and plan.evidence["type"].startswith("weak evidence")


def test_a_write_to_a_missing_derived_name_is_a_review_naming_the_source():
    plan = planner.plan(Event("42703", 'column "service_type_id" of relation "sessions" does not exist',
                              "UPDATE sessions SET service_type_id = 3 WHERE id = 1"), CATALOG)
    assert plan.status == "needs_review" and plan.ddl == [] and "write service_type instead" in plan.reason


RENAMED = Catalog((Table("public", "users", (Column("id", "integer", 1), Column("full_name", "text", 2),
                                             Column("email", "text", 3), Column("enabled", "boolean", 4),
                                             Column("created_at", "timestamp with time zone", 5)),
                         primary_key=("id",), attnum_high=5),))


def users_missing(name, statement):
    return planner.plan(Event("42703", f'column "{name}" does not exist', statement), RENAMED)


def test_a_column_the_statement_leaves_out_where_the_name_was_is_a_proposed_rename():
    plan = users_missing("is_active", "SELECT id, full_name, email, is_active, created_at FROM users")
    assert plan.status == "pending_approval" and plan.action == "add_alias" and plan.alias.expression == '"enabled"'
    assert "leaves out" in plan.reason


def test_a_column_that_keeps_the_name_as_a_word_is_a_proposed_rename():
    plan = users_missing("name", "SELECT id, name FROM users")
    assert plan.status == "pending_approval" and plan.alias.expression == '"full_name"'


def test_a_column_of_another_type_or_a_list_that_names_everything_is_no_rename():
    # is_active is boolean by its name; the column between is text: nothing says it was renamed.
    plan = users_missing("is_active", "SELECT id, is_active, email, enabled FROM users")
    assert plan.action == "add_column" and plan.status == "apply"
    # Code ahead of the schema lists every column of the table and the new one after them.
    plan = users_missing("is_verified", "SELECT id, full_name, email, enabled, created_at, is_verified FROM users")
    assert plan.action == "add_column" and plan.status == "apply"
    # A join lists the other table's columns beside it: they are not this table's neighbours.
    plan = users_missing("archived_at", "SELECT u.id, u.archived_at, u.created_at, o.id FROM users u JOIN orders o ON true")
    assert plan.action == "add_column"


def test_the_only_unnamed_column_of_a_type_with_a_made_up_default_is_a_proposed_rename():
    plan = users_missing("is_active", "SELECT id, is_active FROM users")
    assert plan.status == "pending_approval" and plan.alias.expression == '"enabled"' and "read false" in plan.reason
    # A timestamp beside another reads NULL, not a made-up value: added, as code ahead of the schema.
    assert users_missing("archived_at", "SELECT id, archived_at FROM users").action == "add_column"


def test_a_derived_name_over_an_indexed_source_on_a_large_table_asks_for_an_index():
    def plan_for(row_estimate, indexed, policy=Policy()):
        table = Table("public", "sessions", SESSIONS.columns, ("id",), row_estimate=row_estimate,
                      row_bound=row_estimate * 2, attnum_high=2, indexed_columns=frozenset(indexed))
        return missing_column("service_type_id", "SELECT id FROM sessions WHERE service_type_id = 5",
                              catalog=Catalog((table,)), policy=policy)

    served = plan_for(50_000, {"id", "service_type"})
    name = planner.index_name(served.table, "service_type_id")
    assert served.evidence["index"] == (f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "public"."sessions" '
                                        '(("service_type"::integer))')
    assert "selfheal indexes --apply" in served.reason
    in_table = plan_for(5e6, {"service_type"}, Policy(derived_columns="table", generated_column_row_limit=1000))
    assert in_table.evidence["index"].endswith('ON "public"."sessions" ("service_type_id")')
    assert "index" not in plan_for(500, {"service_type"}).evidence  # a scan is as quick
    assert "index" not in plan_for(50_000, {"id"}).evidence  # the source is not indexed either
