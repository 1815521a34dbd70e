"""Tests for the search filter language and order-by parsing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg.domain.filters import (
    MAX_DEPTH,
    MAX_LENGTH,
    OPS,
    And,
    Compare,
    Expr,
    Field,
    In,
    IsNull,
    Like,
    Not,
    Op,
    Or,
    OrderKey,
    parse_filter,
    parse_order_by,
)
from modelreg.errors import InvalidFilter

ATTRS = frozenset({"name", "version", "stage", "description", "run_id"})


def parse(text: str | None) -> Expr | None:
    return parse_filter(text, ATTRS)


def one(text: str) -> Expr:
    expr = parse_filter(text, ATTRS)
    assert expr is not None
    return expr


def error(text: str) -> InvalidFilter:
    with pytest.raises(InvalidFilter) as info:
        parse_filter(text, ATTRS)
    return info.value


def attr(key: str, pos: int) -> Field:
    return Field("attr", key, pos)


def eq(key: str, value: str | int | float | bool, pos: int) -> Compare:
    return Compare(attr(key, pos), "=", value, pos)


# --------------------------------------------------------------------------- happy paths


def test_example_from_the_docs() -> None:
    text = (
        "name LIKE 'fraud%' AND stage = 'production' AND metrics.auc >= 0.9 "
        "AND params.depth = 6 AND tags.team = 'risk'"
    )
    assert one(text) == And(
        (
            Like(attr("name", 0), "fraud%", case_insensitive=False, negated=False, position=0),
            Compare(attr("stage", 23), "=", "production", 23),
            Compare(Field("metrics", "auc", 48), ">=", 0.9, 48),
            Compare(Field("params", "depth", 71), "=", 6, 71),
            Compare(Field("tags", "team", 92), "=", "risk", 92),
        )
    )


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t  "])
def test_empty_text_parses_to_none(text: str | None) -> None:
    assert parse(text) is None


def test_ops_constant() -> None:
    assert OPS == ("=", "!=", "<", "<=", ">", ">=")


@pytest.mark.parametrize(
    ("written", "op"),
    [
        ("=", "="),
        ("==", "="),
        ("!=", "!="),
        ("<>", "!="),
        ("<", "<"),
        ("<=", "<="),
        (">", ">"),
        (">=", ">="),
    ],
)
@pytest.mark.parametrize("space", [" ", ""])
def test_every_operator(written: str, op: Op, space: str) -> None:
    expr = one(f"version{space}{written}{space}3")
    assert expr == Compare(attr("version", 0), op, 3, 0)


def test_and_binds_tighter_than_or() -> None:
    assert one("name = 'a' OR name = 'b' AND stage = 'c'") == Or(
        (eq("name", "a", 0), And((eq("name", "b", 14), eq("stage", "c", 29))))
    )
    assert one("name = 'a' AND name = 'b' OR stage = 'c'") == Or(
        (And((eq("name", "a", 0), eq("name", "b", 15))), eq("stage", "c", 29))
    )


def test_parentheses_override_precedence() -> None:
    assert one("name = 'a' AND (stage = 'b' OR stage = 'c')") == And(
        (eq("name", "a", 0), Or((eq("stage", "b", 16), eq("stage", "c", 31))))
    )


def test_and_or_are_flattened() -> None:
    expr = one("(name = 1 AND name = 2) AND (name = 3 AND name = 4)")
    assert isinstance(expr, And)
    assert [item.value for item in expr.items if isinstance(item, Compare)] == [1, 2, 3, 4]
    expr = one("name = 1 OR (name = 2 OR name = 3) OR name = 4")
    assert isinstance(expr, Or)
    assert len(expr.items) == 4


def test_redundant_parentheses() -> None:
    assert one("((name = 'a'))") == eq("name", "a", 2)


def test_not_binds_tighter_than_and() -> None:
    assert one("NOT name = 'a' AND stage = 'b'") == And(
        (Not(eq("name", "a", 4)), eq("stage", "b", 19))
    )


def test_not_of_group_and_double_not() -> None:
    assert one("NOT (name = 'a' OR stage = 'b')") == Not(
        Or((eq("name", "a", 5), eq("stage", "b", 19)))
    )
    assert one("not not name = 'a'") == Not(Not(eq("name", "a", 8)))


def test_in_and_not_in() -> None:
    assert one("stage IN ('staging', 'production')") == In(
        attr("stage", 0), ("staging", "production"), negated=False, position=0
    )
    assert one("version not in (1,2 , 3)") == In(
        attr("version", 0), (1, 2, 3), negated=True, position=0
    )
    assert one("params.x IN (1, 'a', 2.5, true)") == In(
        Field("params", "x", 0), (1, "a", 2.5, True), negated=False, position=0
    )


def test_single_value_in_list() -> None:
    assert one("stage IN ('x')") == In(attr("stage", 0), ("x",), negated=False, position=0)


def test_is_null_and_is_not_null() -> None:
    assert one("description IS NULL") == IsNull(attr("description", 0), False, 0)
    assert one("tags.owner is not null") == IsNull(Field("tags", "owner", 0), True, 0)


@pytest.mark.parametrize(
    ("text", "insensitive", "negated"),
    [
        ("name LIKE 'a%'", False, False),
        ("name ILIKE 'a%'", True, False),
        ("name NOT LIKE 'a%'", False, True),
        ("name NOT ILIKE 'a%'", True, True),
        ("name like 'a%'", False, False),
        ('name not ilike "a%"', True, True),
    ],
)
def test_like_variants(text: str, insensitive: bool, negated: bool) -> None:
    assert one(text) == Like(attr("name", 0), "a%", insensitive, negated, 0)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("1", 1),
        ("-2", -2),
        ("0", 0),
        ("007", 7),
        ("0.5", 0.5),
        (".5", 0.5),
        ("-.5", -0.5),
        ("1e-3", 0.001),
        ("2.5E+4", 25000.0),
        ("1e3", 1000.0),
        ("-1.25", -1.25),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
    ],
)
def test_numbers(literal: str, value: float) -> None:
    expr = one(f"metrics.m = {literal}")
    assert isinstance(expr, Compare)
    assert expr.value == value
    assert type(expr.value) is type(value)


def test_negative_number_directly_after_operator() -> None:
    assert one("metrics.loss>-0.5") == Compare(Field("metrics", "loss", 0), ">", -0.5, 0)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'plain'", "plain"),
        ('"double"', "double"),
        ("'it''s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ("'mixed \"quotes\"'", 'mixed "quotes"'),
        ("''", ""),
        ("''''", "'"),
        (r"'back\slash'", "back\\slash"),
        (r"'trailing\'", "trailing\\"),
        ("'a, b) OR (c'", "a, b) OR (c"),
        ("'multi\nline'", "multi\nline"),
        ("'ünïcødé'", "ünïcødé"),
    ],
)
def test_strings(literal: str, value: str) -> None:
    assert one(f"name = {literal}") == eq("name", value, 0)


@pytest.mark.parametrize(("literal", "value"), [("TRUE", True), ("false", False), ("True", True)])
def test_booleans(literal: str, value: bool) -> None:
    expr = one(f"params.flag = {literal}")
    assert isinstance(expr, Compare)
    assert expr.value is value


def test_true_in_quotes_is_a_string() -> None:
    assert one("params.flag = 'true'") == Compare(Field("params", "flag", 0), "=", "true", 0)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("metrics.`f1 score` > 0", Field("metrics", "f1 score", 0)),
        ("metrics.`val.loss` > 0", Field("metrics", "val.loss", 0)),
        ("tags.`it``s` > 0", Field("tags", "it`s", 0)),
        ("params.`a = 'b'` > 0", Field("params", "a = 'b'", 0)),
        ("metrics.val.loss > 0", Field("metrics", "val.loss", 0)),
        ("tags.team-name/sub:x > 0", Field("tags", "team-name/sub:x", 0)),
        ("params.Max_Depth > 0", Field("params", "Max_Depth", 0)),
        ("params.0 > 0", Field("params", "0", 0)),
        ("METRICS.AUC > 0", Field("metrics", "AUC", 0)),
        ("Tags.x > 0", Field("tags", "x", 0)),
    ],
)
def test_namespaced_fields(text: str, field: Field) -> None:
    assert one(text) == Compare(field, ">", 0, 0)


def test_identifiers_are_case_insensitive() -> None:
    assert one("NAME = 'x'") == eq("name", "x", 0)
    assert one("Run_Id = 'x'") == eq("run_id", "x", 0)


def test_keywords_are_case_insensitive() -> None:
    assert one("name = 'a' oR stage = 'b' AnD NoT version IS not NULL") == Or(
        (
            eq("name", "a", 0),
            And((eq("stage", "b", 14), Not(IsNull(attr("version", 34), True, 34)))),
        )
    )


def test_whitespace_is_flexible() -> None:
    assert one("\n(name='a')\tOR\r\nstage  =  'b'  ") == Or(
        (eq("name", "a", 2), eq("stage", "b", 16))
    )


def test_positions_of_compound_predicates() -> None:
    expr = one("  stage IN ('a') AND  tags.x IS NULL")
    assert expr == And(
        (In(attr("stage", 2), ("a",), False, 2), IsNull(Field("tags", "x", 22), False, 22))
    )


def test_nesting_at_the_limit_is_allowed() -> None:
    text = "(" * MAX_DEPTH + "name = 1" + ")" * MAX_DEPTH
    assert one(text) == eq("name", 1, MAX_DEPTH)
    assert isinstance(one("NOT " * MAX_DEPTH + "name = 1"), Not)


def test_length_at_the_limit_is_allowed() -> None:
    text = "name = 'x'" + " " * (MAX_LENGTH - 10)
    assert len(text) == MAX_LENGTH
    assert one(text) == eq("name", "x", 0)


def test_long_flat_chains_do_not_recurse() -> None:
    text = " OR ".join(["version = 1"] * 600)
    expr = one(text)
    assert isinstance(expr, Or)
    assert len(expr.items) == 600


def test_nodes_are_frozen_and_hashable() -> None:
    expr = one("name = 'a' AND stage IN ('x', 'y')")
    assert isinstance(expr, And)
    assert hash(expr) == hash(one("name = 'a' AND stage IN ('x', 'y')"))
    with pytest.raises(AttributeError):
        expr.items = ()  # type: ignore[misc]


def test_field_str() -> None:
    assert str(attr("name", 0)) == "name"
    assert str(Field("metrics", "val.loss", 0)) == "metrics.val.loss"
    assert str(Field("metrics", "f1 score", 0)) == "metrics.`f1 score`"
    assert str(Field("tags", "a`b", 0)) == "tags.`a``b`"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        # unterminated strings and backticks point at the opening quote
        ("name = 'abc", 7, "unterminated string"),
        ('name = "abc', 7, "unterminated string"),
        ("name = 'it''s", 7, "unterminated string"),
        ("name = 'a' AND stage = 'b", 23, "unterminated string"),
        ("metrics.`f1 score > 1", 8, "unterminated backtick"),
        ("metrics.`` = 1", 8, "empty field key"),
        ("`name` = 1", 0, "needs a metrics., params. or tags. prefix"),
        # unexpected characters
        ("name = 'a' & stage = 'b'", 11, "unexpected character '&'"),
        ("name ! 'a'", 5, "unexpected character '!'"),
        ("name = 'a';", 10, "unexpected character ';'"),
        ("name = - 1", 7, "unexpected character '-'"),
        ("name = ü", 7, "unexpected character 'ü'"),
        ("ünï = 1", 0, "unexpected character"),
        ("name = \x00", 7, "unexpected character"),
        # unexpected tokens
        ("name =", 6, "expected a value"),
        ("name = ", 7, "expected a value"),
        ("name = production", 7, "expected a value"),
        ("name = NULL", 7, "expected a value"),
        ("name = (1)", 7, "expected a value"),
        ("name = = 1", 7, "expected a value"),
        ("name", 4, "expected an operator"),
        ("name 'a'", 5, "expected an operator"),
        ("name AND stage = 1", 5, "expected an operator"),
        ("name IS 1", 8, "expected NULL"),
        ("name IS NOT", 11, "expected NULL"),
        ("name NOT = 1", 9, "expected IN, LIKE or ILIKE after NOT"),
        ("name IN 'a'", 8, "expected '(' after IN"),
        ("name IN ('a' 'b')", 13, "expected ')'"),
        ("name IN ('a',)", 13, "expected a value"),
        ("(name = 'a'", 11, "expected ')'"),
        ("((name = 'a') OR stage = 1", 26, "expected ')'"),
        ("= 1", 0, "expected a field or '('"),
        ("()", 1, "expected a field or '('"),
        ("name = 1 AND", 12, "expected a field or '('"),
        ("name = 1 OR OR stage = 1", 12, "expected a field or '('"),
        ("NOT", 3, "expected a field or '('"),
        ("AND = 1", 0, "expected a field or '('"),
        ("'name' = 1", 0, "expected a field or '('"),
        ("1 = 1", 0, "expected a field or '('"),
        # trailing input
        ("name = 'a' stage = 'b'", 11, "unexpected trailing input"),
        ("name = 'a')", 10, "unexpected trailing input"),
        ("name = 1 2", 9, "unexpected trailing input"),
        # IN and LIKE
        ("name IN ()", 8, "empty IN list"),
        ("name NOT IN ( )", 12, "empty IN list"),
        ("name LIKE 3", 10, "quoted string pattern after LIKE"),
        ("name ILIKE true", 11, "quoted string pattern after ILIKE"),
        ("name NOT LIKE", 13, "quoted string pattern after LIKE"),
        # fields
        ("foo.bar = 1", 0, "unknown field namespace 'foo'"),
        ("name = 1 OR Metric.x = 1", 12, "unknown field namespace 'Metric'"),
        ("name.x = 1", 0, "unknown field namespace 'name'"),
        ("metrics. = 1", 8, "expected a key after 'metrics.'"),
        ("metrics.-x = 1", 8, "expected a key after 'metrics.'"),
        ("owner = 'me'", 0, "unknown field 'owner'; expected one of: description, name, run_id"),
        ("name = 1 AND metrics = 1", 13, "unknown field 'metrics'"),
        # numbers
        ("version = 1abc", 10, "invalid number '1abc'"),
        ("version = 1.2.3", 10, "invalid number '1.2.3'"),
        ("version = 1.", 10, "invalid number '1.'"),
        ("version = 1e", 10, "invalid number '1e'"),
        ("metrics.x = 1e999", 12, "number out of range"),
        ("version = 9223372036854775808", 10, "integer out of range"),
        ("version = " + "9" * 5000, 10, "integer out of range"),
    ],
)
def test_errors(text: str, position: int, message: str) -> None:
    exc = error(text)
    assert exc.position == position
    assert message in exc.message
    assert exc.message.endswith(f" at position {position}")
    assert exc.details["position"] == position
    assert exc.code == "INVALID_FILTER"


def test_unknown_field_lists_the_allowed_names() -> None:
    exc = error("owner = 'me'")
    assert exc.message == (
        "unknown field 'owner'; expected one of: description, name, run_id, stage, version, "
        "metrics.*, params.*, tags.* at position 0"
    )


def test_too_long() -> None:
    text = "name = 'x'" + " " * MAX_LENGTH
    exc = error(text)
    assert exc.position == MAX_LENGTH
    assert "longer than 10000 characters" in exc.message
    assert error(" " * (MAX_LENGTH + 1)).position == MAX_LENGTH


def test_too_deep_parentheses() -> None:
    text = "(" * (MAX_DEPTH + 1) + "name = 1" + ")" * (MAX_DEPTH + 1)
    exc = error(text)
    assert exc.position == MAX_DEPTH
    assert "nested deeper than 50 levels" in exc.message


def test_too_deep_not() -> None:
    exc = error("NOT " * (MAX_DEPTH + 1) + "name = 1")
    assert exc.position == 4 * MAX_DEPTH
    assert error("NOT " * 2000 + "name = 1").position == 4 * MAX_DEPTH


def test_too_deep_mixed() -> None:
    exc = error("NOT (" * 26 + "name = 1" + ")" * 26)
    assert exc.position == 5 * 25  # levels alternate NOT, '('; the 51st is the 26th NOT


def test_siblings_do_not_add_up_depth() -> None:
    group = "(" * 30 + "name = 1" + ")" * 30
    assert isinstance(one(f"{group} AND {group} OR NOT {group}"), Or)


# --------------------------------------------------------------------------- order by


def test_order_by_empty() -> None:
    assert parse_order_by(None, ATTRS) == ()
    assert parse_order_by("", ATTRS) == ()
    assert parse_order_by("  ", ATTRS) == ()
    assert parse_order_by([], ATTRS) == ()
    assert parse_order_by(["", " "], ATTRS) == ()


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ("name", OrderKey(attr("name", 0), descending=False)),
        ("+name", OrderKey(attr("name", 1), descending=False)),
        ("-name", OrderKey(attr("name", 1), descending=True)),
        ("name ASC", OrderKey(attr("name", 0), descending=False)),
        ("name DESC", OrderKey(attr("name", 0), descending=True)),
        ("name desc", OrderKey(attr("name", 0), descending=True)),
        ("  VERSION   Desc  ", OrderKey(attr("version", 2), descending=True)),
        ("-metrics.auc", OrderKey(Field("metrics", "auc", 1), descending=True)),
        ("metrics.`f1 score` DESC", OrderKey(Field("metrics", "f1 score", 0), descending=True)),
        ("tags.`a,b`", OrderKey(Field("tags", "a,b", 0), descending=False)),
        ("PARAMS.Depth", OrderKey(Field("params", "Depth", 0), descending=False)),
    ],
)
def test_order_by_single_clause(clause: str, expected: OrderKey) -> None:
    assert parse_order_by(clause, ATTRS) == (expected,)
    assert parse_order_by([clause], ATTRS) == (expected,)


def test_order_by_comma_separated_string() -> None:
    assert parse_order_by("stage, -metrics.auc ,version DESC", ATTRS) == (
        OrderKey(attr("stage", 0), False),
        OrderKey(Field("metrics", "auc", 8), True),
        OrderKey(attr("version", 21), True),
    )


def test_order_by_sequence() -> None:
    assert parse_order_by(("-version", "name asc", "tags.x, stage"), ATTRS) == (
        OrderKey(attr("version", 1), True),
        OrderKey(attr("name", 0), False),
        OrderKey(Field("tags", "x", 0), False),
        OrderKey(attr("stage", 8), False),
    )


@pytest.mark.parametrize(
    ("clauses", "position", "message"),
    [
        ("owner", 0, "invalid order_by clause 'owner': unknown field 'owner'"),
        ("name, foo.bar", 6, "invalid order_by clause 'foo.bar': unknown field namespace 'foo'"),
        ("name,,stage", 5, "empty order_by clause"),
        ("name,", 5, "empty order_by clause"),
        (",name", 0, "empty order_by clause"),
        ("name sideways", 5, "invalid order_by clause 'name sideways': expected ASC or DESC"),
        ("name DESC ASC", 5, "expected ASC or DESC"),
        ("name DESC x", 5, "expected ASC or DESC"),
        ("name!", 4, "expected ASC or DESC, found '!'"),
        ("metrics.`a`DESC", 11, "expected ASC or DESC"),
        ("-name DESC", 6, "invalid order_by clause '-name DESC': use a +/- prefix or ASC/DESC"),
        ("+name asc", 6, "not both"),
        ("--name", 1, "expected a field"),
        ("- name", 1, "expected a field"),
        ("DESC", 0, "unknown field 'DESC'"),
        ("metrics.`auc", 8, "unterminated backtick-quoted key"),
        ("metrics.", 8, "expected a key after 'metrics.'"),
        ("'name'", 0, "expected a field"),
        ("name, NAME DESC", 6, "duplicate order_by field 'name'"),
        ("metrics.auc, -metrics.auc", 14, "duplicate order_by field 'metrics.auc'"),
        (["metrics.`f1 score`", "metrics.`f1 score`"], 0, "duplicate"),
    ],
)
def test_order_by_errors(clauses: str | list[str], position: int, message: str) -> None:
    with pytest.raises(InvalidFilter) as info:
        parse_order_by(clauses, ATTRS)
    assert info.value.position == position
    assert message in info.value.message
    assert info.value.message.endswith(f" at position {position}")


def test_order_by_same_key_different_namespace_is_fine() -> None:
    keys = parse_order_by("metrics.x, params.x, tags.x", ATTRS)
    assert [k.field.namespace for k in keys] == ["metrics", "params", "tags"]


def test_order_by_keys_are_case_sensitive() -> None:
    assert len(parse_order_by("metrics.AUC, metrics.auc", ATTRS)) == 2


def test_order_by_too_long() -> None:
    with pytest.raises(InvalidFilter) as info:
        parse_order_by("name" + " " * MAX_LENGTH, ATTRS)
    assert info.value.position == MAX_LENGTH


# --------------------------------------------------------------------------- properties

# Fragments of the grammar, so that generated text gets past the tokenizer more often.
_GRAMMARISH = st.lists(
    st.sampled_from(
        [
            *"()',\"`.=!<>-+ \n",
            *("name", "stage", "metrics", "tags", "x", "1", "0.5", "e"),
            *(" AND ", " OR ", "NOT ", " IN ", " IS ", " NULL", " LIKE ", " TRUE"),
        ]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), _GRAMMARISH))
def test_arbitrary_text_parses_or_raises_invalid_filter(text: str) -> None:
    position = None
    try:
        parse(text)
    except InvalidFilter as exc:
        position = exc.position if exc.position is not None else -1
    assert position is None or 0 <= position <= len(text)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=100), _GRAMMARISH, st.lists(st.text(max_size=20))))
def test_arbitrary_order_by_parses_or_raises_invalid_filter(clauses: str | list[str]) -> None:
    position = None
    try:
        parse_order_by(clauses, ATTRS)
    except InvalidFilter as exc:
        position = exc.position if exc.position is not None else -1
    assert position is None or position >= 0


_VALUES = st.one_of(
    st.text(max_size=10),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)


def _literal(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


@settings(max_examples=200, deadline=None)
@given(
    key=st.text(min_size=1, max_size=15),
    op=st.sampled_from(OPS),
    value=_VALUES,
)
def test_generated_comparisons_round_trip(
    key: str, op: str, value: str | int | float | bool
) -> None:
    quoted_key = "`" + key.replace("`", "``") + "`"
    expr = one(f"params.{quoted_key} {op} {_literal(value)}")
    assert isinstance(expr, Compare)
    assert expr.field == Field("params", key, 0)
    assert expr.op == op
    assert expr.value == value
    assert type(expr.value) is type(value)
