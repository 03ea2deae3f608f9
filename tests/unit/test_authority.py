"""Who may cause which change: the planner's plan, the reporting role's rights, the scope."""

from selfheal.core import authority, planner
from selfheal.core.authority import Rights
from selfheal.core.planner import Alias, Catalog, Column, Event, Policy, Table

ITEMS = Table("public", "items", (Column("id", "integer", 1),), primary_key=("id",), attnum_high=1)
CATALOG = Catalog((ITEMS,), aliases=(Alias("public", "items", "Items", kind="relation"),))
READER = Rights("app", schema_usage=True, privileges=frozenset({"SELECT"}))


def decide(statement, rights=READER, policy=Policy(), message='column "note" does not exist'):
    event = Event("42703", message, statement)
    plan = planner.plan(event, CATALOG, policy)
    assert plan.status == "apply", plan
    return authority.authorize(plan, event, rights, policy, CATALOG)


def test_the_statement_decides_which_privilege_is_needed():
    needed = lambda sql: authority.required_privileges(Event("42703", "", sql), ITEMS, CATALOG)  # noqa: E731
    assert needed("SELECT note FROM items") == ("SELECT",)
    assert needed("UPDATE items SET note = 1") == ("UPDATE",)
    assert needed("WITH x AS (SELECT 1) DELETE FROM public.items WHERE note") == ("DELETE",)
    assert needed('INSERT INTO "Items" (note) VALUES (1)') == ("INSERT",)  # a legacy name of the table
    assert needed("INSERT INTO other (a) SELECT note FROM items") == ("SELECT",)  # items is only read
    assert authority.required_privileges(Event("42703", 'column "a" of relation "items" does not exist'),
                                         ITEMS, CATALOG) == ("INSERT", "UPDATE")
    assert needed("COPY items (note) FROM STDIN") == ("INSERT",) and needed("COPY items TO STDOUT") == ("SELECT",)
    assert authority.required_privileges(Event("42809", 'cannot copy to view "items"'), ITEMS, CATALOG) == ("INSERT",)


def test_a_role_that_may_run_the_statement_gets_the_plan():
    assert decide("SELECT note FROM items WHERE note = 1").status == "apply"


def test_a_role_without_the_privilege_is_refused_with_no_ddl():
    plan = decide("UPDATE items SET note = 1")
    assert plan.status == "refused" and plan.ddl == [] and "lacks UPDATE" in plan.reason
    assert plan.evidence["would_have"] == "add_column" and plan.evidence["refused_for"] == "app"


def test_no_schema_usage_no_role_and_an_extension_table_are_refused():
    assert "no USAGE" in decide("SELECT note FROM items WHERE note = 1", Rights("app", privileges=frozenset({"SELECT"}))).reason
    assert "does not exist" in decide("SELECT note FROM items WHERE note = 1", Rights("gone", role_exists=False)).reason
    owned = Rights("postgres", schema_usage=True, privileges=frozenset(authority.PRIVILEGES), extension="pg_cron")
    assert "belongs to extension pg_cron" in decide("SELECT note FROM items WHERE note = 1", owned).reason


def test_scope_keeps_selfheal_to_the_schemas_and_tables_an_administrator_names():
    assert Policy().scope == ("public",)
    other = Policy.from_settings({"scope": 'app, "Odd, Schema".t, reports.daily'})
    assert other.scope == ("app", "Odd, Schema.t", "reports.daily")
    assert other.in_scope("app", "x") and other.in_scope("reports", "daily") and not other.in_scope("reports", "x")
    assert not other.in_scope("public", "items") and Policy.from_settings({"scope": "*"}).in_scope("any", "t")
    plan = decide("SELECT note FROM items WHERE note = 1", policy=other)
    assert plan.status == "refused" and "outside selfheal's scope" in plan.reason
