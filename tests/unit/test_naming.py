import pytest

from selfheal.core import naming


@pytest.mark.parametrize("name", ["x" * 64, "x" * 63, "", "bad name", "semi;colon", 'quo"te', "pg_thing",
                                  "selfheal_x", "ünïcode", "1starts_with_digit", "drop table x; --"])
def test_refuses_names_unfit_for_ddl(name):
    with pytest.raises(naming.RefusedName):
        naming.validate_identifier(name)


def test_accepts_ordinary_names_up_to_62_bytes():
    assert naming.validate_identifier("x" * 62) == "x" * 62
    assert naming.validate_identifier("UnitPrice") == "UnitPrice"


@pytest.mark.parametrize("schema", ["pg_catalog", "information_schema", "pg_toast", "pg_temp_3", "selfheal",
                                    "selfheal_compat"])
def test_refuses_system_and_own_schemas(schema):
    with pytest.raises(naming.RefusedName):
        naming.validate_schema(schema)


@pytest.mark.parametrize("legacy, canonical", [("InvoiceLine", "invoice_line"), ("UnitPrice", "unit_price"),
                                               ("AlbumId", "album_id"), ("HTTPCode", "http_code")])
def test_snake_case(legacy, canonical):
    assert naming.snake_case(legacy) == canonical
    assert naming.fold_key(legacy) == naming.fold_key(canonical)


def test_legacy_style_is_carried_to_columns():
    assert naming.legacy_style("InvoiceLine", "invoice_line") == "pascal"
    assert naming.apply_style("pascal", "unit_price") == "UnitPrice"
    assert naming.legacy_style("invoiceline", "invoice_line") == "flat"
    assert naming.apply_style("flat", "unit_price") == "unitprice"
    assert naming.legacy_style("invoices_old", "invoice_line") == "same"


@pytest.mark.parametrize("name, expected", [
    ("recommendation_data", ("jsonb", "'{}'::jsonb")), ("raw_json", ("jsonb", "'{}'::jsonb")),
    ("metadata", ("jsonb", "'{}'::jsonb")), ("is_active", ("boolean", "false")), ("has_paid", ("boolean", "false")),
    ("created_at", ("timestamp with time zone", None)), ("retry_count", ("integer", "0")),
    ("package_name", ("text", None)), ("title", ("text", None)), ("long_description", ("text", None)),
    ("customer_id", None), ("nickname", None), ("gift_wrap", None), ("renamed", None),
])
def test_type_from_name(name, expected):
    assert naming.type_from_name(name) == expected


def test_edit_distance_with_a_limit_stops_early_and_agrees_below_it():
    assert naming.edit_distance("nmae", "name") == 1 and naming.edit_distance("nmae", "name", 2) == 1
    assert naming.edit_distance("status", "state", 2) == 2
    assert naming.edit_distance("recommendation_data", "service_type", 2) == 3
    assert naming.edit_distance("a" * 40, "b" * 40, 2) == 3
    assert naming.probable_typo("emial", ["email", "id", "mail_settings"]) == ["email"]


def test_edit_distance_agrees_with_the_whole_table_of_alignments():
    """The banded, prefix-and-suffix-trimmed distance against the plain dynamic programme."""
    import random

    def plain(a, b):
        d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i in range(len(a) + 1):
            d[i][0] = i
        for j in range(len(b) + 1):
            d[0][j] = j
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
                if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
        return d[-1][-1]

    r = random.Random(7)
    for _ in range(3000):
        a = "".join(r.choice("abc_") for _ in range(r.randint(0, 9)))
        b = "".join(r.choice("abc_") for _ in range(r.randint(0, 9)))
        exact = plain(a, b)
        assert naming.edit_distance(a, b) == exact, (a, b)
        for limit in (1, 2):
            assert naming.edit_distance(a, b, limit) == min(exact, limit + 1), (a, b, limit)
