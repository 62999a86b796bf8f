"""read_cases: cases.csv -> validated cases, or one InputError listing every problem
(FORMAT.md §2)."""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doerunner.backends import BACKENDS
from doerunner.errors import InputError, Problem
from doerunner.inputs.case import Case
from doerunner.inputs.cases import read_cases
from doerunner.inputs.thresholds import Threshold

from .conftest import run_srd


def write(tmp_path: Path, data: bytes, name: str = "cases.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def problems_of(path: Path | str, **kwargs: object) -> list[str]:
    with pytest.raises(InputError) as excinfo:
        read_cases(path, **kwargs)  # type: ignore[arg-type]
    assert excinfo.value.exit_code == 4
    return [str(p) for p in excinfo.value.problems]


def missing_cmd_message() -> str:
    """What the shell backend says about a case without a command (it owns that text)."""
    case = Case("a", "shell", None, 1.0, 1, 0, {}, {}, {}, ())
    [(column, message)] = BACKENDS["shell"]().check(case)
    assert column == "cmd"
    assert "cmd" in message
    return message


# --- files that are fine ----------------------------------------------------------------------

def test_every_kind_of_column(tmp_path: Path) -> None:
    p = write(tmp_path, (
        b"case_id,backend,cmd,timeout_s,repeat,warmup,tags,bs,param_lr,tag_gpu,note_why,"
        b"threshold_p95,threshold_tput\n"
        b"a,shell,echo {bs} {lr},2.5,3,auto,fast;slow,8,0.1,x,first,<=0.5,>=100\n"
        b"b,dummy,,0.01,1,2,,16,0.2,no,,0.3,\n"
    ))
    a, b = read_cases(p)
    assert a == Case(
        case_id="a", backend="shell", cmd="echo {bs} {lr}", timeout_s=2.5, repeat=3,
        warmup="auto", params={"bs": "8", "lr": "0.1"},
        tags={"fast": True, "gpu": True, "slow": True}, notes={"why": "first"},
        thresholds=(Threshold("p95", "<=", 0.5, "<=0.5"), Threshold("tput", ">=", 100.0, ">=100")),
        line=2,
    )
    assert b == Case(
        case_id="b", backend="dummy", cmd=None, timeout_s=0.01, repeat=1, warmup=2,
        params={"bs": "16", "lr": "0.2"}, tags={"fast": False, "gpu": False, "slow": False},
        notes={"why": ""}, thresholds=(Threshold("p95", "<=", 0.3, "0.3"),), line=3,
    )
    assert list(a.params) == ["bs", "lr"]
    assert list(b.tags) == ["fast", "gpu", "slow"]


def test_near_misses_of_reserved_columns_are_errors_with_did_you_mean(tmp_path: Path) -> None:
    p = write(tmp_path, (
        b"case_id,cmd,Timeout_s,timeout,repeats,warm_up,tag,command,threshold-p95,params_n,"
        b"timout_s,size\n"
        b"a,echo hi,5,5,3,1,x,echo,<1,2,5,1\n"
    ))
    def meant(col: int, name: str, hit: str) -> str:
        return (f"{p}:1:{col}: column {name!r} would be read as a parameter: did you mean "
                f"{hit!r}? (a parameter of that name is written 'param_{name}')")
    assert problems_of(p) == [
        meant(3, "Timeout_s", "timeout_s"), meant(4, "timeout", "timeout_s"),
        meant(5, "repeats", "repeat"), meant(6, "warm_up", "warmup"), meant(7, "tag", "tags"),
        meant(8, "command", "cmd"), meant(9, "threshold-p95", "threshold_p95"),
        meant(10, "params_n", "param_n"), meant(11, "timout_s", "timeout_s"),
    ]
    # written as parameters, they are parameters
    p = write(tmp_path, b"case_id,cmd,param_timeout,param_repeats,size\na,echo,5,3,1\n")
    (case,) = read_cases(p)
    assert case.params == {"timeout": "5", "repeats": "3", "size": "1"}
    assert case.timeout_s == 600.0 and case.repeat == 1


def test_defaults(tmp_path: Path) -> None:
    p = write(tmp_path, b"case_id,cmd\nonly,true\n")
    [case] = read_cases(p)
    assert case == Case("only", "shell", "true", 600.0, 1, 0, {}, {}, {}, (), 2)
    [case] = read_cases(p, default_backend="dummy", default_timeout_s=5)
    assert (case.backend, case.timeout_s, case.warmup) == ("dummy", 5.0, 0)


def test_empty_cells_take_the_defaults(tmp_path: Path) -> None:
    p = write(tmp_path, b"case_id,backend,cmd,timeout_s,repeat,warmup,tags\na, ,echo, ,,,\n")
    [case] = read_cases(p, default_timeout_s=7.0)
    assert case == Case("a", "shell", "echo", 7.0, 1, 0, {}, {}, {}, (), 2)


def test_thresholds_in_every_spelling(tmp_path: Path) -> None:
    p = write(tmp_path, b"case_id,cmd,threshold_a,threshold_b,threshold_c,threshold_d,"
                        b"threshold_e\nx,true,0.1,<=2,>= 3,<4,> 5e2\n")
    [case] = read_cases(p)
    assert [(t.metric, t.op, t.bound, t.text) for t in case.thresholds] == [
        ("a", "<=", 0.1, "0.1"), ("b", "<=", 2.0, "<=2"), ("c", ">=", 3.0, ">= 3"),
        ("d", "<", 4.0, "<4"), ("e", ">", 500.0, "> 5e2")]


def test_comments_blank_rows_bom_and_crlf(tmp_path: Path) -> None:
    p = write(tmp_path, b"\xef\xbb\xbf# leading comment\r\n"
                        b"  case_id , cmd \r\n"
                        b"\r\n"
                        b"a,echo a\r\n"
                        b"  # a comment, with a comma\r\n"
                        b" , ,\t\r\n"
                        b"#b,echo b\r\n"
                        b"c,echo c")
    cases = read_cases(p)
    assert [(c.case_id, c.cmd, c.line) for c in cases] == [("a", "echo a", 4), ("c", "echo c", 8)]


def test_quoted_fields_are_kept_verbatim(tmp_path: Path) -> None:
    p = write(tmp_path, (
        'case_id,cmd,msg,param_path\n'
        'q1,"printf \'%s\\n\' ""$(whoami)"", {msg}","a, b\nand ""c""","  spaced  "\n'
        'q2,echo,"héllo wörld ✓","日本"\n'
    ).encode())
    q1, q2 = read_cases(p)
    assert q1.cmd == 'printf \'%s\\n\' "$(whoami)", {msg}'
    assert q1.params == {"msg": 'a, b\nand "c"', "path": "  spaced  "}
    assert (q1.line, q2.line) == (2, 4)
    assert q2.params == {"msg": "héllo wörld ✓", "path": "日本"}


def test_tags_from_both_places_are_merged_and_sorted(tmp_path: Path) -> None:
    p = write(tmp_path, b"case_id,cmd,tags,tag_gpu,tag_big\n"
                        b"a,true,zeta  alpha;gpu,0,YES\n"
                        b"b,true,,  True ,\n"
                        b"c,true,;,,\n")
    a, b, c = read_cases(p)
    assert a.tags == {"alpha": True, "big": True, "gpu": True, "zeta": True}
    assert list(a.tags) == ["alpha", "big", "gpu", "zeta"]
    assert b.tags == {"alpha": False, "big": False, "gpu": True, "zeta": False}
    assert c.tags == dict.fromkeys(["alpha", "big", "gpu", "zeta"], False)


def test_case_id_rules_that_pass(tmp_path: Path) -> None:
    long_id = "A" * 128
    p = write(tmp_path, f"case_id,cmd\n{long_id},true\n.hidden,true\na-b_c.d,true\n"
                        f"  padded  ,true\n".encode())
    assert [c.case_id for c in read_cases(p)] == [long_id, ".hidden", "a-b_c.d", "padded"]


def test_backend_checks_can_be_left_out(tmp_path: Path) -> None:
    p = write(tmp_path, b"case_id,cmd\na,\nb,echo {nope}\n")
    assert [c.cmd for c in read_cases(p, check_backends=False)] == [None, "echo {nope}"]


def test_hf_rows_warm_up_automatically(tmp_path: Path) -> None:
    p = write(tmp_path, b"case_id,backend\nm,hf\n")
    [case] = read_cases(p, check_backends=False)
    assert case.warmup == "auto"


def test_a_wrong_default_backend_is_an_input_error(tmp_path: Path) -> None:
    p = write(tmp_path, b"case_id,cmd\na,true\n")
    with pytest.raises(InputError, match=r"unknown backend 'nope' \(known: dummy, hf, shell\)"):
        read_cases(p, default_backend="nope")


def test_the_file_is_named_as_given(tmp_path: Path) -> None:
    write(tmp_path, b"case_id\n")
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        assert problems_of("cases.csv") == [
            "cases.csv:0:0: no cases: the file has a header but no rows"]
    finally:
        os.chdir(old)


def test_repeated_values_share_one_object(tmp_path: Path) -> None:
    p = write(tmp_path, b"case_id,cmd,bs\n" + b"".join(
        b"c%d,run --bs {bs},%d\n" % (i, i % 2) for i in range(10)))
    cases = read_cases(p)
    assert len({id(c.cmd) for c in cases}) == 1
    assert len({id(c.params["bs"]) for c in cases}) == 2


# --- spreadsheet exports: empty columns at the end, ; and tab separators ----------------------

def test_excel_export_with_empty_columns_at_the_end(tmp_path: Path) -> None:
    # What Excel writes for a sheet whose used range is wider than the table: a BOM, CRLF,
    # and empty cells to the right of it in every row.
    p = write(tmp_path, b"\xef\xbb\xbfcase_id,cmd,repeat,,,\r\n"
                        b"a,echo hi,2,,,\r\n"
                        b"b,echo ho, ,, ,\r\n"
                        b"c,echo c,3\r\n")  # the empty cells may also be left out
    notices: list[str] = []
    assert read_cases(p, notices=notices) == [
        Case("a", "shell", "echo hi", 600.0, 2, 0, {}, {}, {}, (), 2),
        Case("b", "shell", "echo ho", 600.0, 1, 0, {}, {}, {}, (), 3),
        Case("c", "shell", "echo c", 600.0, 3, 0, {}, {}, {}, (), 4),
    ]
    assert notices == [f"{p}: ignored 3 empty columns at the end of the header"]
    assert len(read_cases(p)) == 3  # notices are optional
    p = write(tmp_path, b"case_id,cmd,\na,true,\n")
    notices = []
    assert [c.case_id for c in read_cases(p, notices=notices)] == ["a"]
    assert notices == [f"{p}: ignored 1 empty column at the end of the header"]


def test_a_plain_file_gives_no_notice(tmp_path: Path) -> None:
    # A ; in a cell or in the header's comment does not make a comma file ;-separated.
    p = write(tmp_path, b"# a; b; c\ncase_id,cmd,tags\na,echo a;b,fast;slow\n")
    notices: list[str] = []
    [case] = read_cases(p, notices=notices)
    assert (case.cmd, case.tags, notices) == ("echo a;b", {"fast": True, "slow": True}, [])


def test_semicolon_export_is_read_with_a_notice(tmp_path: Path) -> None:
    # Excel in locales whose decimal mark is a comma: ; between cells, 0,5 for a half.
    p = write(tmp_path, b"\xef\xbb\xbf# exported; by hand\r\n"
                        b"case_id;cmd;timeout_s;n;note_why;;\r\n"
                        b'a;echo a,b {n};5;0,5;"x;y";;\r\n'
                        b"b;true;0.5;1,25;;;\r\n")
    notices: list[str] = []
    a, b = read_cases(p, notices=notices)
    # Parameters are text for the command: a decimal comma reaches it as written.
    assert a == Case("a", "shell", "echo a,b {n}", 5.0, 1, 0, {"n": "0,5"}, {}, {"why": "x;y"},
                     (), 3)
    assert (b.timeout_s, b.params, b.line) == (0.5, {"n": "1,25"}, 4)
    assert notices == [f"{p}: read as ;-separated",
                       f"{p}: ignored 2 empty columns at the end of the header",
                       f"{p}: parameter 'n' holds numbers with a decimal comma (0,5): "
                       "commands get them as written; write 0.5 where a command expects a "
                       "point"]


def test_a_decimal_comma_in_a_number_is_an_error_with_a_hint(tmp_path: Path) -> None:
    p = write(tmp_path, b"case_id;cmd;timeout_s;threshold_p95;threshold_rps\n"
                        b"a;true;0,5;<=0,25;>= 1,5\n"
                        b"b;true;1,000,000;1;2\n")
    notices: list[str] = []
    assert problems_of(p, notices=notices) == [
        f"{p}:2:3: timeout_s must be a positive number of seconds, got '0,5' (a decimal comma: "
        "write '0.5')",
        f"{p}:2:4: threshold '<=0,25' does not parse: expected a number, optionally after <=, "
        ">=, < or > (a decimal comma: write '<=0.25')",
        f"{p}:3:3: timeout_s must be a positive number of seconds, got '1,000,000'",
    ]
    assert notices == [f"{p}: read as ;-separated"]  # told even when the read fails
    p = write(tmp_path, b'case_id,cmd,timeout_s\na,true,"2,5"\n')  # quoted in a comma file
    assert problems_of(p) == [f"{p}:2:3: timeout_s must be a positive number of seconds, "
                              "got '2,5' (a decimal comma: write '2.5')"]


def test_tab_separated_file_is_read_with_a_notice(tmp_path: Path) -> None:
    p = write(tmp_path, b"case_id\tcmd\trepeat\tsize\na\techo a, b; c\t3\t1,5\n")
    notices: list[str] = []
    [case] = read_cases(p, notices=notices)
    assert case == Case("a", "shell", "echo a, b; c", 600.0, 3, 0, {"size": "1,5"}, {}, {}, (),
                        2)
    assert notices == [f"{p}: read as tab-separated",
                       f"{p}: parameter 'size' holds numbers with a decimal comma (0,5): "
                       "commands get them as written; write 0.5 where a command expects a "
                       "point"]


def test_csv_faults_are_located_in_a_semicolon_file(tmp_path: Path) -> None:
    p = write(tmp_path, b'case_id;cmd;x\na;"echo" hi;1\nb;true;"open\n')
    assert problems_of(p) == [
        f'{p}:2:2: text after the closing quote of a quoted field (write "" for a quote inside '
        'quotes)',
        f"{p}:3:3: unterminated quoted field",
    ]


def test_values_under_empty_header_cells_are_errors(tmp_path: Path) -> None:
    p = write(tmp_path, b"case_id,cmd,repeat,,,\n"
                        b"a,true,2,,,\n"
                        b"b,true,2,,x,\n"
                        b"c,true,2,, y ,\n"
                        b"d,true,2,,z,\n")
    notices: list[str] = []
    assert problems_of(p, notices=notices) == [
        f"{p}:3:5: value 'x' in column 5, whose header cell is empty (and in 2 more rows): "
        "name the column, or empty its cells",
    ]
    assert notices == [f"{p}: ignored 2 empty columns at the end of the header"]
    p = write(tmp_path, b"case_id,cmd,,\na,true,,1\n")
    assert problems_of(p) == [f"{p}:2:4: value '1' in column 4, whose header cell is empty: "
                              "name the column, or empty its cells"]


def test_an_empty_header_cell_before_a_name_is_an_error(tmp_path: Path) -> None:
    p = write(tmp_path, b"case_id,,cmd,,\na,,true,,\n")
    notices: list[str] = []
    assert problems_of(p, notices=notices) == [f"{p}:1:2: empty column name"]
    assert notices == [f"{p}: ignored 2 empty columns at the end of the header"]


def test_rows_of_the_wrong_length_with_empty_columns_at_the_end(tmp_path: Path) -> None:
    p = write(tmp_path, b"case_id,cmd,repeat,,,\na,true\nb,true,1,,,,\nc,true,1,,\n")
    assert problems_of(p) == [
        f"{p}:2:0: row has 2 cells but the header has 3 (and 3 empty at its end)",
        f"{p}:3:0: row has 7 cells but the header has 3 (and 3 empty at its end)",
    ]


# --- hostile input: one entry each ------------------------------------------------------------

Data = bytes | Callable[[], bytes] | str  # str: "DIR" or "MISSING"

HOSTILE: list[tuple[str, Data, list[str]]] = [
    ("empty file", b"", ["0:0: file is empty"]),
    ("only a BOM and blank lines", b"\xef\xbb\xbf\n \r\n,,\n", ["0:0: file is empty"]),
    ("only comments", b"# nothing\n", ["0:0: no header row: the file holds only comments"]),
    ("header only", b"case_id,cmd\n# no rows\n\n",
     ["0:0: no cases: the file has a header but no rows"]),
    ("no case_id column", b"id,cmd\na,true\n",
     ["1:0: missing required column 'case_id' (column 1 is 'id': did you mean 'case_id'?)"]),
    ("no case_id at all", b"cmd\ntrue\n", ["1:0: missing required column 'case_id'"]),
    ("case_id spelt in another case", b"Case_ID,cmd\na,true\n",
     ["1:0: missing required column 'case_id' (column 1 is 'Case_ID': column names are "
      "case-sensitive)"]),
    ("duplicate case_id", b"case_id,cmd\na,true\nb,true\na,false\n",
     ["4:1: case_id 'a' duplicates line 2"]),
    ("case_id differing only in case", b"case_id,cmd\nRun-1,true\nrun-1,true\n",
     ["3:1: case_id 'run-1' duplicates 'Run-1' on line 2 (case ids name files; "
      "case is ignored)"]),
    ("empty case_id", b"case_id,cmd\n  ,true\n", ["2:1: case_id: missing value"]),
    ("case_id of 129 characters", b"case_id,cmd\n" + b"a" * 129 + b",true\n",
     ["2:1: case_id '" + "a" * 40 + "...' is not allowed: use 1-128 characters of "
      "A-Z a-z 0-9 . _ -"]),
    ("case_id going up a folder", b"case_id,cmd\n../x,true\n",
     ["2:1: case_id '../x' is not allowed: use 1-128 characters of A-Z a-z 0-9 . _ -"]),
    ("case_id with a slash", b"case_id,cmd\na/b,true\n",
     ["2:1: case_id 'a/b' is not allowed: use 1-128 characters of A-Z a-z 0-9 . _ -"]),
    ("case_id '..'", b"case_id,cmd\n..,true\n",
     ["2:1: case_id '..' is not allowed: '.' and '..' name folders"]),
    ("case_id '.'", b"case_id,cmd\n.,true\n",
     ["2:1: case_id '.' is not allowed: '.' and '..' name folders"]),
    ("unknown backend", b"case_id,backend,cmd\na,foo,true\n",
     ["2:2: unknown backend 'foo' (known: dummy, hf, shell)"]),
    ("shell case without cmd", b"case_id,cmd,x\na,true,1\nb, ,2\n", ["3:2: {missing_cmd}"]),
    ("shell case without cmd column", b"case_id,x\na,1\n", ["2:0: {missing_cmd}"]),
    ("timeout_s not a number", b"case_id,cmd,timeout_s\na,true,abc\n",
     ["2:3: timeout_s must be a positive number of seconds, got 'abc'"]),
    ("timeout_s negative", b"case_id,cmd,timeout_s\na,true,-1\n",
     ["2:3: timeout_s must be a positive number of seconds, got '-1'"]),
    ("timeout_s infinite", b"case_id,cmd,timeout_s\na,true,inf\n",
     ["2:3: timeout_s must be a positive number of seconds, got 'inf'"]),
    ("repeat zero", b"case_id,cmd,repeat\na,true,0\n",
     ["2:3: repeat must be an integer >= 1, got '0'"]),
    ("repeat not an integer", b"case_id,cmd,repeat\na,true,2.5\n",
     ["2:3: repeat must be an integer >= 1, got '2.5'"]),
    ("warmup word", b"case_id,cmd,warmup\na,true,x\n",
     ["2:3: warmup must be an integer >= 0 or 'auto', got 'x'"]),
    ("warmup negative", b"case_id,cmd,warmup\na,true,-1\n",
     ["2:3: warmup must be an integer >= 0 or 'auto', got '-1'"]),
    ("unterminated quote", b'case_id,cmd\na,true\nb,"echo\nhi\n',
     ["3:2: unterminated quoted field"]),
    ("unterminated after an escaped quote", b'case_id,cmd\na,"x""',
     ["2:2: unterminated quoted field"]),
    ("text after a closing quote", b'case_id,cmd\na,"echo" hi\nb,true\n',
     ['2:2: text after the closing quote of a quoted field (write "" for a quote inside '
      'quotes)']),
    ("lone carriage return", b"case_id,cmd\na,echo\rb,true\n",
     ["2:2: carriage return without line feed outside quotes: use LF or CRLF line ends"]),
    ("row with too many cells", b"case_id,cmd\na,true,extra\n",
     ["2:0: row has 3 cells but the header has 2"]),
    ("row with too few cells", b"case_id,cmd,x\na,true,1\nb\n",
     ["3:0: row has 1 cell but the header has 3"]),
    ("invalid UTF-8", b"case_id,cmd\na,caf\xe9\n", ["2:2: not valid UTF-8 (byte 0xe9)"]),
    ("invalid UTF-8 in a later line of a cell", b'case_id,cmd\na,"one\ntw\xff"\n',
     ["3:2: not valid UTF-8 (byte 0xff)"]),
    ("invalid UTF-8 in the header", b"case_id,c\xc3d\na,true\n",
     ["1:2: not valid UTF-8 (byte 0xc3)"]),
    ("UTF-16", "case_id,cmd\na,true\n".encode("utf-16"),
     ["1:0: file is UTF-16 encoded: save it as UTF-8"]),
    ("NUL bytes", b"case_id,cmd\na,tr\x00ue\nb,\x00\n", ["2:2: NUL byte in file"]),
    ("a 50 MB field", lambda: b"case_id,cmd\na," + b"x" * 50_000_000 + b"\nb,true\n",
     ["2:2: field longer than 1 MiB"]),
    ("a 2 MB quoted field over many lines",
     lambda: b'case_id,cmd\na,"' + b"xy\n" * 700_000 + b'"\nb,"open\n',
     ["2:2: field longer than 1 MiB", "700003:2: unterminated quoted field"]),
    ("ext_ column", b"case_id,cmd,ext_gpu\na,true,1\n",
     ["1:3: ext_* columns are reserved for backend output"]),
    ("unparsable threshold", b"case_id,cmd,threshold_p95\na,true,fast\n",
     ["2:3: threshold 'fast' does not parse: expected a number, optionally after <=, >=, "
      "< or >"]),
    ("same parameter twice", b"case_id,cmd,x,param_x\na,true,1,2\n",
     ["1:4: parameter 'x' is given twice: as 'x' (column 3) and 'param_x' (column 4)"]),
    ("parameters with one environment name", b"case_id,cmd,max-tokens,param_max_tokens\n"
                                             b"a,true,1,2\n",
     ["1:4: parameters 'max-tokens' (column 3) and 'max_tokens' (column 4) both become "
      "SRD_PARAM_MAX_TOKENS"]),
    ("parameter name with a space", b"case_id,cmd,batch size\na,true,1\n",
     ["1:3: parameter name 'batch size' is not allowed: use A-Z a-z 0-9 . _ -"]),
    ("prefix without a name", b"case_id,cmd,param_\na,true,1\n",
     ["1:3: column 'param_' needs a name after 'param_'"]),
    ("empty column name", b"case_id,cmd, \na,true,1\n", ["1:3: empty column name"]),
    ("duplicate column", b"case_id,cmd, cmd\na,true,false\n",
     ["1:3: duplicate column 'cmd' (also column 2)"]),
    ("bad tag_ value", b"case_id,cmd,tag_gpu\na,true,maybe\n",
     ["2:3: tag_gpu must be 1, true, yes or x to mark the tag (empty, 0, false or no not to), "
      "got 'maybe'"]),
    ("bad tag name", b"case_id,cmd,tags\na,true,\"ok,not/ok\"\n",
     ["2:3: tag name 'ok,not/ok' is not allowed: use A-Z a-z 0-9 . _ -"]),
    ("directory", "DIR", ["0:0: cannot read: is a directory"]),
    ("missing file", "MISSING", ["0:0: cannot read: no such file"]),
]


@pytest.mark.parametrize(("data", "expected"), [h[1:] for h in HOSTILE],
                         ids=[h[0] for h in HOSTILE])
def test_hostile_input(tmp_path: Path, data: Data, expected: list[str]) -> None:
    if data == "DIR":
        path = tmp_path
    elif data == "MISSING":
        path = tmp_path / "nope.csv"
    else:
        path = write(tmp_path, data() if callable(data) else data)  # type: ignore[arg-type]
    if any("{missing_cmd}" in e for e in expected):
        expected = [e.format(missing_cmd=missing_cmd_message()) for e in expected]
    assert problems_of(path) == [f"{path}:{e}" for e in expected]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path: Path) -> None:
    p = write(tmp_path, b"case_id,cmd\na,true\n")
    p.chmod(0)
    try:
        assert problems_of(p) == [f"{p}:0:0: cannot read: permission denied"]
    finally:
        p.chmod(0o600)


@pytest.mark.parametrize(("error", "why"), [
    (PermissionError(13, "Permission denied"), "permission denied"),
    (OSError(5, "Input/output error"), "input/output error"),
    (ValueError("embedded null byte"), "invalid path"),
])
def test_read_errors_become_problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     error: Exception, why: str) -> None:
    import doerunner.inputs.bounded

    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    p = write(tmp_path, b"case_id,cmd\na,true\n")
    # the one place srd opens an input for reading with a bound
    monkeypatch.setattr(doerunner.inputs.bounded, "open", refuse, raising=False)
    assert problems_of(p) == [f"{p}:0:0: cannot read: {why}"]


def test_every_problem_is_reported_at_once_in_line_order(tmp_path: Path) -> None:
    p = write(tmp_path, (
        b"case_id,backend,cmd,timeout_s,repeat,ext_x,x,param_x\n"
        b"a,shell,true,1,1,,,\n"
        b"a,nope,true,0,0,,,\n"
        b"# fine\n"
        b"b/c,dummy,,abc,1,,,\n"
        b"d,shell,true\n"
        b"A,shell,,1,1,,,\n"
    ))
    assert problems_of(p) == [f"{p}:{e}" for e in [
        "1:6: ext_* columns are reserved for backend output",
        "1:8: parameter 'x' is given twice: as 'x' (column 7) and 'param_x' (column 8)",
        "3:1: case_id 'a' duplicates line 2",
        "3:2: unknown backend 'nope' (known: dummy, hf, shell)",
        "3:4: timeout_s must be a positive number of seconds, got '0'",
        "3:5: repeat must be an integer >= 1, got '0'",
        "5:1: case_id 'b/c' is not allowed: use 1-128 characters of A-Z a-z 0-9 . _ -",
        "5:4: timeout_s must be a positive number of seconds, got 'abc'",
        "6:0: row has 3 cells but the header has 8",
        "7:1: case_id 'A' duplicates 'a' on line 2 (case ids name files; case is ignored)",
    ]]


def test_backend_problems_come_with_the_others(tmp_path: Path) -> None:
    p = write(tmp_path, b"case_id,cmd,repeat\na,,1\nb,true,x\nc,,2\n")
    message = missing_cmd_message()
    assert problems_of(p) == [f"{p}:2:2: {message}",
                              f"{p}:3:3: repeat must be an integer >= 1, got 'x'",
                              f"{p}:4:2: {message}"]


def test_backend_problems_point_at_the_parameter_column(tmp_path: Path) -> None:
    p = write(tmp_path, b"case_id,backend,param_sleep_s\na,dummy,0\nb,dummy,soon\n")
    [problem] = problems_of(p)
    assert problem.startswith(f"{p}:3:3: ")
    assert "sleep_s" in problem and "'soon'" in problem


def test_long_values_are_cut_in_messages(tmp_path: Path) -> None:
    p = write(tmp_path, b"case_id,cmd,timeout_s\na,true," + b"9" * 100 + b"x\n")
    [problem] = problems_of(p)
    assert problem == (f"{p}:2:3: timeout_s must be a positive number of seconds, "
                       f"got '{'9' * 40}...'")


# --- fuzzing: nothing but a list of cases or an InputError -----------------------------------

HEADER_POOL = ["case_id", "case_id", "backend", "cmd", "timeout_s", "repeat", "warmup", "tags",
               "param_x", "x", "X", "max-tokens", "max_tokens", "tag_gpu", "note_why",
               "threshold_p95", "ext_a", "", " ", "param_", "Case_ID", "a b", "#c", "sleep_s"]
CELL_POOL = ["", " ", "a", "A", "a", "..", "a/b", "shell", "dummy", "hf", "foo", "true",
             "echo {x}", "{y}", "$(id)", "0", "1", "-1", "2.5", "auto", "inf", "nan", "x",
             "yes", "maybe", "<=1", ">=2", "<", "gpu;fast", "#", "# c", '"', '""', ",", "\n",
             "\r\n", "é", "\x00"]
cells = st.one_of(st.sampled_from(CELL_POOL),
                  st.text(st.sampled_from('ab,"\n\r #;{}/.\x00é'), max_size=8))


@st.composite
def generated_files(draw: st.DrawFn) -> bytes:
    header = draw(st.lists(st.sampled_from(HEADER_POOL), min_size=1, max_size=6))
    row = st.lists(cells, min_size=max(0, len(header) - 1), max_size=len(header) + 1)
    rows = [header, *draw(st.lists(row, max_size=6))]
    out = io.StringIO()
    if draw(st.booleans()):  # properly quoted
        csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"])),
                   delimiter=draw(st.sampled_from([",", ",", ";", "\t"]))).writerows(rows)
        text = out.getvalue()
    else:  # raw: whatever the cells hold breaks the structure
        text = "\n".join(",".join(r) for r in rows) + draw(st.sampled_from(["", "\n"]))
    data = text.encode()
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b'"', b"\r"])) \
            + data[at:]
    return data


VALID = (b"case_id,backend,cmd,timeout_s,repeat,warmup,tags,x,tag_gpu,note_n,threshold_p95\n"
         b"a,shell,echo {x},1,2,auto,fast;slow,1,x,hello,<=1\n"
         b'b,dummy,,0.5,1,0,,"2, 3",no,"multi\nline",>=0\n'
         b"# comment\n\nc,,true,,,,,\xc3\xa9,,,\n")


@st.composite
def mutated_files(draw: st.DrawFn) -> bytes:
    data = VALID
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and at < len(data):
            bit = 1 << draw(st.integers(0, 7))
            data = data[:at] + bytes([data[at] ^ bit]) + data[at + 1:]
        elif kind == "cut":
            data = data[:at]
        elif kind == "insert":
            data = data[:at] + draw(st.binary(max_size=4)) + data[at:]
        else:
            data = data[:at] + data[at + draw(st.integers(1, 5)):]
    return data


def test_the_valid_fuzz_seed_is_valid(tmp_path: Path) -> None:
    assert [c.case_id for c in read_cases(write(tmp_path, VALID))] == ["a", "b", "c"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(generated_files(), mutated_files()))
def test_fuzz_only_cases_or_input_error(tmp_path_factory: pytest.TempPathFactory,
                                        data: bytes) -> None:
    path = write(tmp_path_factory.getbasetemp(), data, "fuzz.csv")
    try:
        cases = read_cases(path)
    except InputError as e:
        assert e.problems
        for p in e.problems:
            assert isinstance(p, Problem)
            assert p.file == str(path)
            assert p.line >= 0 and p.column >= 0
            assert p.message and "\n" not in p.message and "\r" not in p.message
        return
    assert cases and all(isinstance(c, Case) for c in cases)
    ids = [c.case_id.lower() for c in cases]
    assert len(ids) == len(set(ids))
    assert [c.line for c in cases] == sorted({c.line for c in cases})
    keys = {tuple(c.params) for c in cases}
    assert len(keys) == 1
    assert len({tuple(c.tags) for c in cases}) == 1


# --- the notices on the command line ----------------------------------------------------------

def test_srd_run_reads_spreadsheet_exports_and_warns(tmp_path: Path) -> None:
    (tmp_path / "excel.csv").write_bytes(b"\xef\xbb\xbfcase_id,cmd,repeat,,,\r\n"
                                         b"a,echo value=1,2,,,\r\n"
                                         b"b,echo value=2,1,,,\r\n")
    r = run_srd("run", "--cases", "excel.csv", "--out", "m.csv", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "srd: warning: excel.csv: ignored 3 empty columns at the end of the header" \
        in r.stderr.splitlines()
    with open(tmp_path / "m.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(row["case_id"], row["status"], row["value"]) for row in rows] == [
        ("a", "OK", "1"), ("b", "OK", "2")]
    assert [row["runs"] for row in rows] == ["2", ""]  # repeat was read: a ran twice
    r = run_srd("validate", "m.csv", "--cases", "excel.csv", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (
        0, "m.csv: valid\n",
        "srd: warning: excel.csv: ignored 3 empty columns at the end of the header\n")

    # ;-separated, a parameter with a decimal comma reaching the command as written
    (tmp_path / "semi.csv").write_bytes(b"case_id;cmd;timeout_s;n\r\n"
                                        b"half;test {n} = 0,5 && echo value=3;30;0,5\r\n")
    r = run_srd("run", "--cases", "semi.csv", "--out", "s.csv", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "srd: warning: semi.csv: read as ;-separated" in r.stderr.splitlines()
    with open(tmp_path / "s.csv", newline="") as f:
        [row] = list(csv.DictReader(f))
    assert (row["case_id"], row["status"], row["param_n"], row["value"]) == (
        "half", "OK", "0,5", "3")


def test_dry_run_warns_and_a_bad_export_runs_nothing(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from doerunner.cli import cli

    (tmp_path / "tab.csv").write_bytes(b"case_id\tcmd\t\na\ttrue\t\n")
    r = CliRunner().invoke(cli, ["run", "--cases", str(tmp_path / "tab.csv"), "--out",
                                 str(tmp_path / "m.csv"), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert r.stderr.splitlines()[:2] == [
        f"srd: warning: {tmp_path / 'tab.csv'}: read as tab-separated",
        f"srd: warning: {tmp_path / 'tab.csv'}: ignored 1 empty column at the end of the header"]
    assert not (tmp_path / "m.csv").exists()

    (tmp_path / "semi.csv").write_bytes(b"case_id;cmd;timeout_s\na;true;0,5\n")
    r = run_srd("run", "--cases", "semi.csv", "--out", "m.csv", cwd=tmp_path)
    assert r.returncode == 4
    assert r.stderr.splitlines() == [
        "srd: warning: semi.csv: read as ;-separated",
        "semi.csv:2:3: timeout_s must be a positive number of seconds, got '0,5' "
        "(a decimal comma: write '0.5')"]
    assert not (tmp_path / "m.csv").exists()


# --- metric_<name> columns ------------------------------------------------------------------

def test_metric_columns_are_compiled_patterns(tmp_path: Path) -> None:
    p = write(tmp_path, (
        b"case_id,cmd,metric_usec_per_loop,metric_Loops\n"
        b"a,python -m timeit pass,best of \\d+: ([0-9.]+) usec,(\\d+) loops\n"
        b"b,python -m timeit pass,best of \\d+: ([0-9.]+) usec,\n"
        b"c,python -m timeit pass,,\n"
    ))
    a, b, c = read_cases(p)
    assert [(m.name, m.text) for m in a.metric_patterns] == [
        ("usec_per_loop", r"best of \d+: ([0-9.]+) usec"), ("loops", r"(\d+) loops")]
    assert a.metric_patterns[0] is b.metric_patterns[0]  # one cell, compiled once
    assert a.metric_patterns[0].regex.pattern == r"best of \d+: ([0-9.]+) usec"
    assert c.metric_patterns == ()  # an empty cell extracts nothing
    assert a.definition()["metric_patterns"] == {
        "usec_per_loop": r"best of \d+: ([0-9.]+) usec", "loops": r"(\d+) loops"}
    assert "metric_patterns" not in c.definition()
    # the patterns define the measurement (--resume); a case without keeps its old hash
    assert len({a.fingerprint(), b.fingerprint(), c.fingerprint()}) == 3
    before = repr(("shell", "python -m timeit pass", [], 600.0, 1, 0))  # journals hold these
    assert c.fingerprint() == hashlib.blake2b(before.encode(), digest_size=8).hexdigest()


def test_metric_column_problems(tmp_path: Path) -> None:
    p = write(tmp_path, (
        b"case_id,backend,cmd,metric_a,metric_B,metric_run_seconds,metric_x-y,metric_param_q,"
        b"metrics_z,metric-w,Metric_v,metric_b,metric_Errors\n"
        b"c1,shell,echo,(\\d+,\\d+,,,,,,,,\n"
        b"c2,shell,echo,(\\d)(\\d),,,,,,,,,\n"
        b"c3,dummy,,(\\d),,,,,,,,,\n"
        b"c4,shell,echo,(?P<x>a)(?P=y),a{99999999999}(b),,,,,,,,\n"
        b"c5,shell,echo, ,,,,,,,,,\n"
    ))
    def meant(col: int, name: str, hit: str) -> str:
        return (f"1:{col}: column {name!r} would be read as a parameter: did you mean "
                f"{hit!r}? (a parameter of that name is written 'param_{name}')")
    one_group = "the pattern must have exactly one capturing group, ( ) around the number"
    hint = " (a parameter of that name is written 'param_metric_{}')"
    assert problems_of(p) == [f"{p}:{e}" for e in [
        "1:6: metric name 'run_seconds' is not allowed: srd writes the run_seconds column "
        "itself",
        "1:7: metric name 'x-y' is not allowed: use A-Z a-z 0-9 _ (it is lower-cased)",
        "1:8: metric name 'param_q' is not allowed: param_* columns are copied from cases.csv",
        meant(9, "metrics_z", "metric_z"), meant(10, "metric-w", "metric_w"),
        meant(11, "Metric_v", "metric_v"),
        "1:12: metric 'b' is given twice: as 'metric_B' (column 5) and 'metric_b' (column 12)",
        "1:13: metric name 'Errors' is not allowed: the errors column must hold a count in "
        "every row (print errors=N, or name the metric otherwise)",
        "2:4: metric_a: the pattern does not compile: missing ) at position 4" + hint.format("a"),
        f"2:5: metric_B: {one_group}; it has none" + hint.format("B"),
        f"3:4: metric_a: {one_group}; it has 2 (write (?:...) for a group that does not "
        "capture)" + hint.format("a"),
        "4:4: metric_a: the dummy backend reads no command output; metric_* columns are for "
        "the shell backend",
        "5:4: metric_a: the pattern does not compile: unknown group at position 11"
        + hint.format("a"),
        "5:5: metric_B: the pattern does not compile: repeat count too big at position 2"
        + hint.format("B"),
    ]]


def test_srd_run_refuses_a_bad_pattern_and_runs_nothing(tmp_path: Path) -> None:
    (tmp_path / "cases.csv").write_bytes(b"case_id,cmd,metric_rate\n"
                                         b"a,touch ran,rate (\\d+\n")
    r = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (4, "")
    assert r.stderr.splitlines() == [
        "cases.csv:2:3: metric_rate: the pattern does not compile: missing ) at position 9 (a "
        "parameter of that name is written 'param_metric_rate')"]
    assert not (tmp_path / "m.csv").exists() and not (tmp_path / "ran").exists()


def test_decimal_comma_parameters_are_named_only_when_every_value_has_one() -> None:
    from doerunner.inputs.csvtext import decimal_comma_params

    assert decimal_comma_params([{"a": "0,5", "b": "1,5", "c": "x", "d": ""},
                                 {"a": ",25", "b": "2", "c": "1,0", "d": "-1,5"}]) == ["a", "d"]
