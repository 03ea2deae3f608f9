import hashlib
import uuid

import pytest

from selfheal.core import errors


@pytest.mark.parametrize(
    "message, expected",
    [
        ('column "service_type_id" does not exist', ("service_type_id", None, None)),
        ("column cp.package_name does not exist", ("package_name", "cp", None)),
        ('column "recommendation_data" of relation "sessions" does not exist',
         ("recommendation_data", None, "sessions")),
        ('column "UnitPrice" does not exist', ("UnitPrice", None, None)),
        ('column "we"ird" of relation "t" does not exist', ('we"ird', None, "t")),
        ('ERROR:  column "x" does not exist', ("x", None, None)),
    ],
)
def test_reads_the_three_42703_shapes(message, expected):
    found = errors.parse_missing("42703", message)
    assert (found.name, found.qualifier, found.relation) == expected
    assert found.kind == "column"


@pytest.mark.parametrize("side", ["left", "right"])
def test_reads_a_using_column_missing_from_one_side_of_a_join(side):
    found = errors.parse_missing("42703", f'column "Customer Id" specified in USING clause does not exist in {side} table')
    assert (found.kind, found.name, found.using_side, found.qualifier) == ("column", "Customer Id", side, None)


def test_reads_a_missing_relation_with_and_without_schema():
    assert errors.parse_missing("42P01", 'relation "invoiceline" does not exist').name == "invoiceline"
    found = errors.parse_missing("42P01", 'relation "app.InvoiceLine" does not exist')
    assert (found.schema, found.name) == ("app", "InvoiceLine")


def test_hint_with_one_two_or_no_candidates():
    assert errors.parse_hint('Perhaps you meant to reference the column "sessions.service_type".') == (
        ("sessions", "service_type"),)
    two = errors.parse_hint('Perhaps you meant to reference the column "a.x" or the column "b.x".')
    assert two == (("a", "x"), ("b", "x"))
    assert errors.parse_hint(None) == ()
    assert errors.parse_hint("something else") == ()


def test_translated_message_is_a_clear_refusal_not_a_crash():
    with pytest.raises(errors.UnreadableMessage, match="lc_messages"):
        errors.parse_missing("42703", 'la colonne « x » n\'existe pas')


@pytest.mark.parametrize("state, kind", [
    ("42703", "missing_column"), ("42P01", "missing_relation"), ("22012", "division by zero"),
    ("P0001", "raised by PL/pgSQL"), ("23505", "integrity constraint violation"), ("ZZ999", "other error"),
    (None, "other error"),
])
def test_classifies_by_sqlstate(state, kind):
    assert errors.classify(state) == kind


def test_only_42703_and_42P01_are_schema_errors():
    assert errors.is_schema_error("42703") and errors.is_schema_error("42p01")
    assert not errors.is_schema_error("P0001") and not errors.is_schema_error("22012")


def test_signature_folds_numbers_but_keeps_names():
    a = errors.signature("P0001", "Cost calculation error for order 17")
    b = errors.signature("P0001", "Cost calculation error for order 99")
    assert a == b
    assert errors.signature("42703", 'column "a" does not exist') != errors.signature("42703", 'column "b" does not exist')


def test_reads_a_write_to_a_computed_view_column():
    assert errors.parse_view_write("0A000", 'cannot insert into column "service_type_id" of view "sessions"') == (
        "service_type_id", "sessions")
    assert errors.parse_view_write("0A000", 'cannot update column "x" of view "v"') == ("x", "v")
    assert errors.parse_view_write("42703", 'cannot update column "x" of view "v"') is None


def test_signature_key_is_fixed_size_whatever_the_message():
    short, long = errors.signature_key("P0001", "x"), errors.signature_key("P0001", "x" * 100_000)
    assert len(short) == len(long) == 36 and short != long
    assert errors.signature_key("P0001", "order 17 failed") == errors.signature_key("P0001", "order 99 failed")


@pytest.mark.parametrize("message", ['column "x" does not exist', "order 17 failed", "é\udc80", None])
def test_signature_key_stays_the_uuid_of_the_signatures_md5(message):
    # Keys already stored group with new ones only while the key is computed the same way.
    digest = hashlib.md5(errors.signature("42703", message).encode("utf-8", "replace")).hexdigest()
    assert errors.signature_key("42703", message) == str(uuid.UUID(digest))
    assert errors.signature_key("42703", message) == str(uuid.UUID(digest))  # a repeat, remembered


def test_raised_inside_names_the_function_an_error_came_from():
    assert errors.raised_inside("PL/pgSQL function inline_code_block line 1 at RAISE") == "inline_code_block"
    assert errors.raised_inside('SQL statement "SELECT ghost FROM t"\nPL/pgSQL function audit() line 3 at EXECUTE') \
        == "audit()"
    assert errors.raised_inside('SQL function "f" statement 1') == "f"
    assert errors.raised_inside(None) is None and errors.raised_inside("  ") is None


def test_each_client_report_stands_for_one_log_entry_reported_after_it():
    key = ("42703", 'column "x" does not exist', "app", "shop")
    other = ("42703", 'column "y" does not exist', "app", "shop")
    entries = [(100.0, key), (101.0, key), (102.0, other), (200.0, key)]
    reports = [(7, 100.2, key), (8, 101.3, key), (9, 102.1, ("42703", 'column "y" does not exist', "ops", "shop"))]
    matched, claimed = errors.pair_with_client_reports(entries, reports)
    assert matched == {0, 1} and claimed == [7, 8]  # another role's report, and a late entry, stay apart


def test_a_report_made_before_an_entry_or_long_after_it_is_no_match():
    key = ("22012", "division by zero", "app", "shop")
    assert errors.pair_with_client_reports([(50.0, key)], [(1, 49.9, key)]) == (set(), [])
    assert errors.pair_with_client_reports([(50.0, key)], [(1, 50.0 + 60, key)]) == (set(), [])
