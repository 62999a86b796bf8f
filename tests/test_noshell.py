"""Commands run without a shell (issue 16): `shell` = false or `--no-shell`. The template is
split once like sh would split it, then filled: a placeholder standing alone becomes as many
arguments as its value holds words, a quoted one or one inside a word exactly one. Driven
through `srd run` in a real subprocess, the program a tiny Python script printing its
arguments as JSON."""

from __future__ import annotations

import csv
import json
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from doerunner.cli import cli
from doerunner.inputs.argv import ArgvError, words

from .conftest import run_srd

ARGV_PY = "import json, sys\nprint(json.dumps(sys.argv[1:]))\n"


def _write(tmp_path: Path, rows: list[list[str]]) -> None:
    (tmp_path / "argv.py").write_text(ARGV_PY)
    with open(tmp_path / "cases.csv", "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _run(tmp_path: Path, rows: list[list[str]], *args: str) -> tuple[int, dict, str]:
    _write(tmp_path, rows)
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "-q", *args, cwd=tmp_path)
    with open(tmp_path / "m.csv", newline="") as f:
        return p.returncode, {r["case_id"]: r for r in csv.DictReader(f)}, p.stderr


def _argv(tmp_path: Path, case_id: str, hook: str = "") -> list[str]:
    name = f"{case_id}+{hook}" if hook else case_id
    return json.loads((tmp_path / "m_run" / "logs" / f"{name}.stdout").read_text())


def test_arguments_are_split_once_then_filled(tmp_path: Path) -> None:
    cmd = ("python3 argv.py {flags} \"{flags}\" '{name}' --level={name} {name} \"{q}\" $HOME "
           "'${HOME}' {{x}} \"a  b\" '' {empty} *.py a\\ b #c")
    rc, rows, err = _run(tmp_path, [
        ["case_id", "cmd", "shell", "flags", "name", "q", "empty"],
        ["a", cmd, "no", "-O2 -march=native", "a b;c", "it's \"quoted\" $(reboot)", ""]])
    assert rc == 0, err
    assert rows["a"]["status"] == "OK" and rows["a"]["exit_code"] == "0"
    assert _argv(tmp_path, "a") == [
        "-O2", "-march=native",  # a bare placeholder: its value's words, on purpose
        "-O2 -march=native",  # quoted: exactly one argument
        "a b;c",
        "--level=a b;c",  # inside a word: text in that one argument
        "a", "b;c",  # split like sh splits words, never run: ';' is text
        "it's \"quoted\" $(reboot)",
        "$HOME", "${HOME}",  # no shell: nothing is expanded
        "{x}", "a  b", "",  # literal braces, spaces kept, an empty argument
        # {empty} stands alone and holds no word: no argument at all
        "*.py", "a b", "#c"]  # no globbing, an escaped space, '#' starts no comment


def test_a_value_is_never_read_by_a_shell(tmp_path: Path) -> None:
    rc, _, err = _run(tmp_path, [
        ["case_id", "cmd", "shell", "v"],
        ["a", "python3 argv.py {v} \"{v}\"", "no", "x; touch pwned && `touch pwned2`"]])
    assert rc == 0, err
    assert _argv(tmp_path, "a") == ["x;", "touch", "pwned", "&&", "`touch", "pwned2`",
                                    "x; touch pwned && `touch pwned2`"]
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


def test_no_shell_option_and_the_shell_cell(tmp_path: Path) -> None:
    cmd = "python3 argv.py \"a b\" $SRD_CASE_ID"
    rows = [["case_id", "cmd", "shell"],
            ["dflt", cmd, ""], ["sh", cmd, "yes"], ["nosh", cmd, "false"]]
    rc, _, err = _run(tmp_path, rows)
    assert rc == 0, err
    assert [_argv(tmp_path, c) for c in ("dflt", "sh", "nosh")] == [
        ["a b", "dflt"], ["a b", "sh"], ["a b", "$SRD_CASE_ID"]]
    rc, _, err = _run(tmp_path, rows, "--no-shell")  # the empty cell follows the option
    assert rc == 0, err
    assert [_argv(tmp_path, c) for c in ("dflt", "sh", "nosh")] == [
        ["a b", "$SRD_CASE_ID"], ["a b", "sh"], ["a b", "$SRD_CASE_ID"]]


def test_a_program_not_found_fails_the_case(tmp_path: Path) -> None:
    rc, rows, _ = _run(tmp_path, [
        ["case_id", "cmd", "shell"],
        ["nope", "no-such-program-xyz --help", "no"],
        ["rel", "./missing.sh a", "no"],
        ["killed", "python3 -c \"import os, signal; os.kill(os.getpid(), signal.SIGKILL)\"",
         "no"],
        ["ok", "python3 argv.py", "no"]])
    assert rc == 3
    got = {c: (r["status"], r["exit_code"], r["message"]) for c, r in rows.items()}
    assert got == {"nope": ("FAIL", "", "command not found: no-such-program-xyz"),
                   "rel": ("FAIL", "", "command not found: ./missing.sh"),
                   # exec'd directly: the signal is the program's own, not a shell's 137
                   "killed": ("FAIL", "-9", "killed by signal SIGKILL"),
                   "ok": ("OK", "0", "")}


def test_the_program_is_looked_up_on_path(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "mytool"
    tool.write_text("#!/bin/sh\necho \"tool:$1\"\n")
    tool.chmod(0o755)
    (tmp_path / "cases.csv").write_text("case_id,cmd,x\na,mytool {x},hi there\n")
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "-q", "--no-shell",
                cwd=tmp_path, env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "m_run" / "logs" / "a.stdout").read_text() == "tool:hi\n"


def _invoke(tmp_path: Path, text: str, *args: str) -> tuple[int, list[str]]:
    (tmp_path / "cases.csv").write_text(text)
    r = CliRunner().invoke(cli, ["run", "--cases", str(tmp_path / "cases.csv"), "--out",
                                 str(tmp_path / "m.csv"), *args])
    return r.exit_code, r.output.splitlines()


def test_an_unbalanced_quote_is_an_input_error(tmp_path: Path) -> None:
    code, out = _invoke(tmp_path, (
        "case_id,cmd,shell,v\n"
        "a,python3 argv.py \"oops,no,x\n"
        "b,python3 argv.py 'it's',no,x\n"
        "c,python3 argv.py x\\,no,x\n"
        "d,python3 argv.py {v},no,it's\n"
        "e,python3 argv.py \"{v}\",no,it's\n"
        "f,echo \"fine in a shell',yes,x\n"))
    cf = tmp_path / "cases.csv"
    assert code == 4
    assert out == [
        f"{cf}:2:2: cmd: unbalanced quote: the \" at character 17 is not closed (without a "
        "shell, the command is split as sh would split it)",
        f"{cf}:3:2: cmd: unbalanced quote: the ' at character 22 is not closed (without a "
        "shell, the command is split as sh would split it)",
        f"{cf}:4:2: cmd: ends with a lone backslash (write \\\\ for a backslash)",
        f"{cf}:5:2: cmd: {{v}} stands alone, so its value is split into arguments, but "
        "\"it's\" cannot be split (an unbalanced quote or a lone backslash): write \"{v}\" "
        "to pass it as one argument",
        "srd: 4 problems; nothing was run"]
    assert not (tmp_path / "m.csv").exists() and not (tmp_path / "m_run").exists()


def test_a_bad_option_template_is_an_input_error(tmp_path: Path) -> None:
    code, out = _invoke(tmp_path, "case_id,cmd,v\na,true,x\n", "--no-shell",
                        "--setup", "echo 'x")
    assert code == 4
    assert out == ["srd: error: --setup: unbalanced quote: the ' at character 6 is not "
                   "closed (without a shell, the command is split as sh would split it)"]


def test_dry_run_shows_the_arguments(tmp_path: Path) -> None:
    code, out = _invoke(tmp_path, "case_id,cmd,shell,n\na,python3 argv.py {n} -o '{n}.txt',no,"
                                  "1 2\n", "--dry-run")
    assert code == 0
    assert out[-2] == ("a\tshell\ttimeout=600s\trepeat=1\twarmup=0\tshell=no\t"
                       "python3 argv.py 1 2 -o '1 2.txt'")


@pytest.mark.parametrize(("template", "bare"), [
    ("a b", [True, True]), ("  a   b  ", [True, True]), ("'a b' c", [False, True]),
    ('"a \\" b"', [False]), ("a\\ b", [False]), ("''", [False]), ('""x', [False]),
    ("x''", [False]), ("'{x}'", [False]), ('"\\a\\$"', [False]), ("a#b #c", [True, True]),
    ("\t{x}\n{y} ", [True, True]), ("'\\'", [False]), ("{x}\"\"", [False]),
    ("\\{x}", [False]), ("a\\\\", [False]), ("a\\\n b", [False, True]),
])
def test_words_are_shlex_words(template: str, bare: list[bool]) -> None:
    got = words(template)
    assert [w.text for w in got] == shlex.split(template)
    # Bare: written without quotes or backslashes, so exactly as it reads.
    assert [w.bare for w in got] == bare


@pytest.mark.parametrize(("template", "message"), [
    ("a 'b", "unbalanced quote: the ' at character 3 is not closed"),
    ('a "b\\" c', "unbalanced quote: the \" at character 3 is not closed"),
    ("a 'x' \"y", "unbalanced quote: the \" at character 7 is not closed"),
    ("a\\", "ends with a lone backslash (write \\\\ for a backslash)"),
])
def test_split_problems_say_where(template: str, message: str) -> None:
    with pytest.raises(ArgvError) as e:
        words(template)
    assert str(e.value).startswith(message)
