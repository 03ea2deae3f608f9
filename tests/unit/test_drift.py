from selfheal.core import drift
from selfheal.core.drift import Shape
from selfheal.core.planner import Alias

BEFORE = Shape("public", "sessions", {1: "id", 2: "service_type", 3: "notes"})
DERIVED = Alias("public", "sessions", "service_type_id", expression='CASE WHEN "service_type" ~ \'x\' THEN 1 END',
                source="convention", id=1)


def test_column_rename_serves_the_old_name_and_rewrites_aliases():
    after = Shape("public", "sessions", {1: "id", 2: "kind", 3: "notes"})
    result = drift.compare(BEFORE, after, [DERIVED])
    assert result.events == [("column renamed", {"from": "service_type", "to": "kind"})]
    assert [(a.legacy_name, a.expression, a.source) for a in result.added] == [("service_type", '"kind"', "rename")]
    (old, new), = result.rewritten
    assert old == DERIVED and new.expression == 'CASE WHEN "kind" ~ \'x\' THEN 1 END'


def test_dropping_an_aliased_source_breaks_the_alias():
    after = Shape("public", "sessions", {1: "id", 3: "notes"})
    result = drift.compare(BEFORE, after, [DERIVED])
    assert result.events == [("column dropped", {"column": "service_type"})]
    assert [(a.legacy_name, why) for a, why in result.broken] == [
        ("service_type_id", "its source column service_type was dropped")]


def test_table_rename_moves_aliases_and_serves_the_old_table_name():
    after = Shape("public", "app_sessions", BEFORE.columns)
    result = drift.compare(BEFORE, after, [DERIVED])
    assert result.events[0] == ("table renamed", {"from": "public.sessions", "to": "public.app_sessions"})
    assert result.rewritten[0][1].table == "app_sessions"
    (relation,) = result.added
    assert (relation.kind, relation.legacy_name, relation.table) == ("relation", "sessions", "app_sessions")


def test_a_real_column_retires_an_automatic_alias_but_not_a_declared_one():
    declared = Alias("public", "sessions", "label", expression="'x'", source="user", id=2)
    found = Alias("public", "sessions", "kind_id", expression='"id"', source="convention", id=3)
    after = Shape("public", "sessions", {**BEFORE.columns, 4: "label", 5: "kind_id"})
    result = drift.compare(BEFORE, after, [declared, found])
    assert [a.legacy_name for a, _ in result.retired] == ["kind_id"]
    assert ("column added", {"column": "label"}) in result.events


def test_rewrite_leaves_strings_and_longer_names_alone():
    expr = "'Package ' || credits || ' credits' || credits_extra"
    assert drift.rewrite(expr, "credits", "amount") == "'Package ' || \"amount\" || ' credits' || credits_extra"
    assert drift.references(expr, "credits") and not drift.references(expr, "amount")


def test_a_rename_back_to_an_old_name_retires_its_alias_and_serves_nothing_new():
    first = drift.compare(BEFORE, Shape("public", "sessions", {1: "id", 2: "kind", 3: "notes"}), [])
    (served,) = first.added
    served = Alias("public", "sessions", served.legacy_name, expression=served.expression, source="rename", id=4)
    back = drift.compare(Shape("public", "sessions", {1: "id", 2: "kind", 3: "notes"}), BEFORE, [served])
    assert back.added == []  # "kind" lived only between two migrations
    assert [(a.legacy_name, why) for a, why in back.retired] == [
        ("service_type", "a real column service_type exists on public.sessions")]


def test_a_current_name_beside_its_legacy_one_is_not_retired_by_its_own_column():
    current = Alias("public", "sessions", "service_type", expression='"service_type"', source="current", id=5)
    result = drift.compare(BEFORE, Shape("public", "sessions", {**BEFORE.columns, 4: "added"}), [current])
    assert result.retired == []
