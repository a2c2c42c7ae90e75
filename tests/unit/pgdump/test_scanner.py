"""helios_core.pgdump.scanner: a dump's lines, statements, COPY rows and fields, array literals and SQL tokens."""

from __future__ import annotations

import pytest

from helios_core.errors import ValidationError
from helios_core.pgdump.scanner import (
    DumpScanner,
    decode_copy_field,
    detect_encoding,
    has_undecodable,
    line_source,
    parse_pg_array,
    pg_codec,
    show_undecodable,
    split_copy_line,
    tokenize,
)


def statements(text: str) -> list[tuple[str, str, int]]:
    return [(s.kind, s.text, s.line) for s in DumpScanner(iter(line_source(text)())).statements()]


# ---- lines -----------------------------------------------------------------------------------------------


def test_only_newline_ends_a_line_so_a_carriage_return_stays_in_the_data():
    assert list(line_source("a\r\nb\rc\nlast")()) == ["a\r\n", "b\rc\n", "last"]


def test_a_line_source_can_be_read_again():
    source = line_source(b"x\ny\n")
    assert list(source()) == list(source()) == ["x\n", "y\n"]


def test_bytes_are_decoded_in_the_dumps_client_encoding():
    assert list(line_source(b"SET client_encoding = 'LATIN1';\ncaf\xe9\n")())[1] == "caf\u00e9\n"
    assert list(line_source("caf\u00e9\n".encode())())[0] == "caf\u00e9\n"


def test_a_file_that_is_not_there_is_a_validation_error(tmp_path):
    with pytest.raises(ValidationError, match="There is no file"):
        line_source(tmp_path / "missing.sql")


def test_a_file_is_read_like_bytes(tmp_path):
    path = tmp_path / "dump.sql"
    path.write_bytes(b"SET client_encoding = 'WIN1252';\n\x80\n")
    assert list(line_source(path)())[1] == "\u20ac\n"


@pytest.mark.parametrize("head, encoding", [
    ("SET client_encoding = 'UTF8';", "utf-8"), ("SET client_encoding = 'LATIN1';", "iso8859-1"),
    ("set CLIENT_ENCODING='win-1252';", "cp1252"), ("SET client_encoding TO 'LATIN9';", "iso8859-15"),
    ("SET client_encoding = 'EUC_JP';", "euc-jp"), ("-- a comment\nSET client_encoding = 'WIN1250';\n", "cp1250"),
    ("", "utf-8"),
])
def test_detect_encoding(head, encoding):
    assert detect_encoding(head) == encoding


@pytest.mark.parametrize("name, codec", [
    ("UTF8", "utf-8"), ("unicode", "utf-8"), ("LATIN1", "iso8859-1"), ("LATIN2", "iso8859-2"),
    ("LATIN5", "iso8859-9"), ("LATIN7", "iso8859-13"), ("LATIN9", "iso8859-15"), ("LATIN10", "iso8859-16"),
    ("ISO_8859_1", "iso8859-1"), ("WIN1250", "cp1250"), ("WIN1252", "cp1252"), ("WIN1258", "cp1258"),
    ("KOI8R", "koi8-r"), ("SJIS", "cp932"),
])
def test_postgres_encoding_names_map_to_python_codecs(name, codec):
    assert pg_codec(name) == codec


def test_sql_ascii_is_refused_with_what_to_do():
    with pytest.raises(ValidationError, match="SQL_ASCII.*pg_dump --encoding=UTF8"):
        pg_codec("SQL_ASCII")


@pytest.mark.parametrize("name", ["EUC_TW", "MULE_INTERNAL", "KLINGON"])
def test_an_encoding_helios_cannot_read_is_named_in_the_error(name):
    with pytest.raises(ValidationError) as info:
        pg_codec(name)
    assert repr(name) in str(info.value) and "pg_dump --encoding=UTF8" in str(info.value)


def test_a_dump_in_an_encoding_helios_cannot_read_is_refused_before_reading(tmp_path):
    with pytest.raises(ValidationError, match="'EUC_TW'"):
        line_source(b"SET client_encoding = 'EUC_TW';\nSELECT 1;\n")
    path = tmp_path / "dump.sql"
    path.write_bytes(b"SET client_encoding = 'SQL_ASCII';\n")
    with pytest.raises(ValidationError, match="SQL_ASCII"):
        line_source(path)


# ---- statements ------------------------------------------------------------------------------------------------


def test_statements_end_at_semicolons_outside_quotes_and_comments():
    found = statements("SELECT 'a;b', \"c;d\"; -- x;y\nSELECT /* ; /* nested ; */ still */ 2;\n")
    assert [(k, t) for k, t, _ in found] == [("sql", "SELECT 'a;b', \"c;d\""), ("sql", "SELECT   2")]


def test_dollar_quoted_bodies_span_lines():
    found = statements("CREATE FUNCTION f() RETURNS int AS $body$\nBEGIN RETURN 1; END;\n$body$ LANGUAGE plpgsql;\n"
                       "SELECT 2;\n")
    assert len(found) == 2 and found[0][1].endswith("LANGUAGE plpgsql") and found[1] == ("sql", "SELECT 2", 4)


def test_e_strings_may_escape_a_quote():
    assert statements("SELECT E'it\\'s; fine';\nSELECT 2;")[0][1] == "SELECT E'it\\'s; fine'"


def test_statements_know_their_first_line():
    assert [line for _, _, line in statements("\n\nSELECT\n1;\n\nSELECT 2;")] == [3, 6]


def test_psql_meta_commands_are_their_own_kind():
    assert statements("\\connect shop\nSELECT 1;\n") == [("meta", "\\connect shop", 1), ("sql", "SELECT 1", 2)]


def test_a_last_statement_without_a_semicolon_is_kept():
    assert statements("SELECT 1;\nSELECT 2") == [("sql", "SELECT 1", 1), ("sql", "SELECT 2", 2)]


# ---- COPY blocks -------------------------------------------------------------------------------------------------

COPY = "COPY public.t (a, b) FROM stdin;\n1\tx\r\n2\t\\N\n\\.\nSELECT 1;\n"


def test_copy_rows_are_read_up_to_the_end_marker_without_line_endings():
    scanner = DumpScanner(iter(line_source(COPY)()))
    seen = []
    for st in scanner.statements():
        seen.append((st.kind, st.text))
        if st.kind == "copy":
            assert list(scanner.copy_rows()) == [(2, "1\tx"), (3, "2\t\\N")]
    assert seen == [("copy", "COPY public.t (a, b) FROM stdin"), ("sql", "SELECT 1")]


def test_copy_rows_the_caller_does_not_read_are_skipped():
    assert [k for k, _, _ in statements(COPY)] == ["copy", "sql"]


def test_a_copy_block_cut_short_ends_at_the_end_of_the_dump():
    scanner = DumpScanner(iter(line_source("COPY t FROM stdin;\n1\n2\n")()))
    next(scanner.statements())
    assert [text for _, text in scanner.copy_rows()] == ["1", "2"]


def test_copy_fields_split_on_tabs_only():
    assert split_copy_line("1\t\\N\tx\\ty\t") == ["1", "\\N", "x\\ty", ""]


@pytest.mark.parametrize("raw, value", [
    ("\\N", None), ("\\\\N", "\\N"), ("", ""), ("a\\tb", "a\tb"), ("\\101\\x42", "AB"),
    ("caf\\303\\251", "caf\u00e9"), ("line\\nbreak\\r", "line\nbreak\r"), ("\\q", "q"), ("100%", "100%"),
])
def test_copy_field_decoding(raw, value):
    assert decode_copy_field(raw) == value


@pytest.mark.parametrize("raw, encoding, value", [
    ("caf\\351", "iso8859-1", "caf\u00e9"), ("M\\xfcller", "iso8859-1", "M\u00fcller"),
    ("M\\374ller\\t\u00e9", "iso8859-1", "M\u00fcller\t\u00e9"), ("\\200", "cp1252", "\u20ac"),
    ("\\261", "iso8859-2", "\u0105"), ("caf\\303\\251", "utf-8", "caf\u00e9"),
])
def test_octal_and_hex_escapes_denote_bytes_of_the_dumps_encoding(raw, encoding, value):
    assert decode_copy_field(raw, encoding) == value


def test_a_character_the_dumps_encoding_has_not_is_kept_beside_escapes():
    # Text given as str (not read through line_source) may hold any character.
    assert decode_copy_field("\u20ac\\351", "iso8859-1") == "\u20ac\u00e9"


def test_bytes_the_encoding_cannot_decode_are_marked_not_replaced():
    value = decode_copy_field("caf\\351")  # not UTF-8
    assert value == "caf\udce9" and has_undecodable(value) and show_undecodable(value) == "caf\\xe9"
    raw = list(line_source(b"caf\xe9\n")())[0]  # a raw byte that is not UTF-8 reads the same way
    assert has_undecodable(raw) and show_undecodable(raw) == "caf\\xe9\n"
    assert not has_undecodable("caf\u00e9") and show_undecodable("caf\u00e9") == "caf\u00e9"


# ---- array literals ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [
    ("{}", []), (" {1, 2} ", ["1", "2"]), ('{"a b","",NULL,"NULL"}', ["a b", "", None, "NULL"]),
    ("{{1,2},{3,NULL}}", [["1", "2"], ["3", None]]), ("[1:2]={7,8}", ["7", "8"]), ('{"x\\"y",a\\,b}', ['x"y', "a,b"]),
])
def test_array_literals(text, value):
    assert parse_pg_array(text) == value


@pytest.mark.parametrize("text, message", [
    ("1,2", "is not an array literal"), ("{1,2", "missing }"), ('{"open}', "unterminated quoted"),
    ("{1} x", "unexpected text after"), ('{"a" "b"}', "missing comma"),
])
def test_bad_array_literals_say_why(text, message):
    with pytest.raises(ValueError, match=message):
        parse_pg_array(text)


# ---- tokens ---------------------------------------------------------------------------------------------------------


def test_tokens_decode_strings_and_identifiers():
    tokens = tokenize('INSERT INTO "My ""T""" VALUES (\'it\'\'s\', E\'a\\tb\\x41\', $q$raw \'x\'$q$, '
                      '-2.5e3, NULL)::text')
    assert [(t.kind, t.value) for t in tokens] == [
        ("word", "INSERT"), ("word", "INTO"), ("ident", 'My "T"'), ("word", "VALUES"), ("punct", "("),
        ("str", "it's"), ("punct", ","), ("str", "a\tbA"), ("punct", ","), ("dollar", "$q$raw 'x'$q$"),
        ("punct", ","), ("op", "-"), ("num", "2.5e3"), ("punct", ","), ("word", "NULL"), ("punct", ")"),
        ("cast", "::"), ("word", "text")]


def test_is_word_ignores_case_and_quoted_names():
    word, ident = tokenize('select "select"')
    assert word.is_word("SELECT") and not ident.is_word("SELECT")


def test_text_that_is_not_sql_cannot_be_tokenized():
    with pytest.raises(ValueError, match="cannot read the statement"):
        tokenize("SELECT 'unterminated")
