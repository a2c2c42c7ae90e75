"""helios_core.identifiers: the allow-list every database, table and column name passes, and its quoting."""

from __future__ import annotations

import pytest

from helios_core.errors import ValidationError
from helios_core.identifiers import (
    MAX_LENGTH,
    check_identifier,
    qualified,
    quote_ident,
    sanitize_name,
    validate_identifier,
)


@pytest.mark.parametrize("name", ["events", "_private", "Order_Items2", "a", "x" * MAX_LENGTH, "selected", "tables_"])
def test_plain_names_pass(name):
    assert check_identifier(name) == []
    assert validate_identifier(name, "table") == name


@pytest.mark.parametrize("name, fragment", [
    ("", "is empty"),
    ("1st", "must not start with a digit"),
    ("user-name", "only letters, digits and underscores"),
    ("drop table x;", "only letters, digits and underscores"),
    ("naïve", "only letters, digits and underscores"),
    ("a`b", "only letters, digits and underscores"),
    ("x" * (MAX_LENGTH + 1), f"longer than {MAX_LENGTH} characters"),
])
def test_bad_names_say_what_is_wrong(name, fragment):
    problems = check_identifier(name, "column")
    assert problems and any(fragment in p for p in problems), problems


def test_not_a_string_is_empty():
    assert check_identifier(None, "table") == ["The table name is empty."]  # type: ignore[arg-type]


@pytest.mark.parametrize("word", ["select", "SELECT", "Order", "table", "default"])
def test_reserved_words_are_refused_with_an_alternative(word):
    problems = check_identifier(word, "column")
    assert problems == [f"The column name {word!r} is a reserved SQL word; choose another (for example {word}_)."]


def test_the_kind_is_named_in_the_message():
    assert check_identifier("", "database") == ["The database name is empty."]
    assert "table name" in check_identifier("9lives", "table")[0]


def test_clickhouses_default_database_is_accepted_as_a_database_only():
    assert check_identifier("default", "database") == []
    assert check_identifier("DEFAULT", "database") != []  # only the server's own spelling
    assert check_identifier("default", "table") != []


def test_a_long_bad_name_reports_every_problem_and_is_cut_in_the_message():
    name = "-" * 300
    problems = check_identifier(name)
    assert len(problems) == 2
    assert "'" + "-" * 40 + "'…" in problems[0]


def test_validate_raises_the_first_problem_and_keeps_all():
    with pytest.raises(ValidationError) as info:
        validate_identifier("select-1", "column")
    assert "only letters, digits and underscores" in info.value.message
    assert info.value.problems == check_identifier("select-1", "column")


@pytest.mark.parametrize("name, quoted", [
    ("events", "`events`"),
    ("a`b", "`a\\`b`"),
    ("back\\slash", "`back\\\\slash`"),
    ("x\\`; DROP TABLE t; --", "`x\\\\\\`; DROP TABLE t; --`"),
    ("", "``"),
    (42, "`42`"),
])
def test_quoting_escapes_backticks_and_backslashes(name, quoted):
    assert quote_ident(name) == quoted


@pytest.mark.parametrize("name", ["a`b", "a\\`b", "`", "\\", "x\\\\`y", "ok"])
def test_a_quoted_name_cannot_end_early(name):
    body = quote_ident(name)[1:-1]
    i = 0
    while i < len(body):  # every backtick inside is escaped: the identifier ends only at the last character
        assert body[i] != "`", body
        i += 2 if body[i] == "\\" else 1
    assert i == len(body)


def test_qualified_quotes_both_parts():
    assert qualified("shop", "order items") == "`shop`.`order items`"


@pytest.mark.parametrize("raw, name", [
    ("device.os", "device_os"),
    ("Order Total ($)", "Order_Total"),
    ("2fa_enabled", "c_2fa_enabled"),
    ("select", "select_"),
    ("--", "col"),
    ("", "col"),
    ("__meta__", "meta"),
    (123, "c_123"),
])
def test_sanitize_makes_a_valid_name(raw, name):
    assert sanitize_name(raw) == name
    assert check_identifier(sanitize_name(raw)) == []


def test_sanitize_keeps_names_within_the_limit():
    assert len(sanitize_name("a" * 500)) == MAX_LENGTH
    assert check_identifier(sanitize_name("a" * 500)) == []
