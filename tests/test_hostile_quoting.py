"""Issue 17: a parameter value can never run code, whatever the quoting in ``cmd``.

The red team's reproduction (``echo "x={x}"`` with ``x=$(touch PWNED)``) through the CLI, and
every quoting context checked against the real ``/bin/sh`` with generated values: the shell
prints the value exactly and creates nothing. Templates where no quoting is safe
(backquotes, here-documents) are refused before anything runs."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doerunner.cli import cli
from doerunner.inputs.template import TemplateError, display, render, shell_problems

from .conftest import run_srd

EVIL = "$(touch PWNED)"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_quoted_placeholders_never_run_the_value(tmp_path) -> None:
    # The red team's three quoting styles, through a real srd process.
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd,x\n"
        f'dq,"echo ""x={{x}}""",{EVIL}\n'
        f"sq,echo 'x={{x}}',{EVIL}\n"
        f"bare,echo x={{x}},{EVIL}\n"
        f'sub,"echo ""$(echo ""{{x}}"")""",{EVIL}\n')
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert not (tmp_path / "PWNED").exists()
    logs = tmp_path / "m_run" / "logs"
    for case in ("dq", "sq", "bare"):
        assert (logs / f"{case}.stdout").read_text() == f"x={EVIL}\n"
    assert (logs / "sub.stdout").read_text() == f"{EVIL}\n"
    assert [r["status"] for r in _rows(tmp_path / "m.csv")] == ["OK"] * 4


def test_templates_where_a_value_cannot_stand_are_refused(tmp_path) -> None:
    """A string another shell reads again (sh -c, eval), a here-document whose delimiter is
    quoted, a value inside $((...)) that is not an integer: refused before anything runs,
    with what to write instead."""
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd,x\n"
        "nest,bash -c 'echo {x}',1\n"
        "ev,eval \"echo {x}\",2\n"
        "qhd,\"cat <<'EOF'\n{x}\nEOF\",3\n"
        "ar,echo $(( {x} + 1 )),$(touch PWNED)\n"
        "arok,echo $(( {x} + 1 )),41\n")
    r = CliRunner().invoke(cli, ["run", "--cases", str(tmp_path / "cases.csv"),
                                 "--out", str(tmp_path / "m.csv")])
    assert r.exit_code == 4
    f = tmp_path / "cases.csv"
    nested = ("cmd: {x} is in a string another shell reads again (sh -c, eval), where a value "
              "would run as code: write $SRD_PARAM_X in that string (the value is in its "
              "environment)")
    assert r.output.splitlines() == [
        f"{f}:2:2: {nested}", f"{f}:3:2: {nested}",
        f"{f}:4:2: cmd: {{x}} is in a here-document with a quoted delimiter, where nothing "
        "is substituted: unquote the delimiter, or read $SRD_PARAM_X",
        f"{f}:7:2: cmd: {{x}} is inside $((...)), where a value is read as arithmetic: "
        "'$(touch PWNED)' is not an integer",
        "srd: 4 problems; nothing was run"]
    assert not (tmp_path / "m.csv").exists() and not (tmp_path / "m_run").exists()


def test_backquotes_heredocs_and_the_scanners_blind_spots_run_no_value(tmp_path) -> None:
    """What the red team found after the first fix (issue 17): every template gets the
    value as text — a value is never in the script sh reads, only a reference to
    $SRD_PARAM_X — also where the scanner misjudges the quoting (a `case` pattern's `)`
    inside $(...), a # after an escaped space or a `)`)."""
    cmds = {"bq": "echo `echo {x}`", "hd": "cat <<!\n{x}\n!", "ar": "echo $(( {x} * 2 ))",
            "hash": "echo $(date +%Y)#{x}", "esc": "echo a\\ #{x}",
            "case": 'echo "$(case a in a) echo {x};; esac)"'}
    with open(tmp_path / "cases.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case_id", "cmd", "x"])
        for cid, cmd in cmds.items():
            w.writerow([cid, cmd, "21" if cid == "ar" else EVIL])
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert not (tmp_path / "PWNED").exists()
    logs = tmp_path / "m_run" / "logs"
    got = {c: (logs / f"{c}.stdout").read_text() for c in cmds}
    assert got["bq"] == got["hd"] == got["case"] == f"{EVIL}\n"
    assert got["ar"] == "42\n" and got["esc"] == f"a #{EVIL}\n"
    assert got["hash"].endswith(f"#{EVIL}\n")


def test_what_runs_holds_references_and_dry_run_shows_values() -> None:
    assert render("echo {x} \"{x}\" '{x}'", {"x": EVIL}) == (
        "echo \"${SRD_PARAM_X}\" \"${SRD_PARAM_X}\" ''\"${SRD_PARAM_X}\"''")
    assert display("echo {x} \"{x}\"", {"x": EVIL}) == (
        "echo '$(touch PWNED)' \"\"'$(touch PWNED)'\"\"")
    assert shell_problems("echo '`{x}`'") == []  # backquotes inside single quotes are text
    try:
        render("sh -c 'echo {x}'", {"x": "1"})
    except TemplateError as e:
        assert "another shell reads again" in str(e)
    else:
        raise AssertionError("a nested shell's placeholder was rendered")


# Each template prints the value between two markers; the shell must print exactly that.
TEMPLATES = [
    "printf '[%s]' {x}",
    "printf '[%s]' \"{x}\"",
    "printf '[%s]' '{x}'",
    "printf '[%s]' \"a{x}b\"",
    "printf '[%s]' 'a'\"{x}\"'b'",
    "printf '[%s]' \"$(printf '%s' \"{x}\")\"",
    "printf '[%s]' \"$(printf '%s' {x})\"",
    "# a comment with {x} ' in it\nprintf '[%s]' '{x}'",
    "printf '[%s]' \"{x}\" # and {x} again",
    "printf '[%s]' \"`printf '%s' {x}`\"",
    "printf '[%s]' \"$(cat <<EOF\n{x}\nEOF\n)\"",
]
VALUES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                 max_size=30) | st.sampled_from(
    [EVIL, "`touch PWNED`", "'", '"', "\\", "'\"'\"'", "a\nb", "$HOME", "${x}", "\\$(x)",
     "\"; touch PWNED; echo \"", "'; touch PWNED; echo '", "}{", "*", "~", ""])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=VALUES)
def test_every_quoting_context_gives_the_value_as_text(tmp_path, value: str) -> None:
    for template in TEMPLATES:
        script = render(template, {"x": value})
        env = {"PATH": os.environ["PATH"], "SRD_PARAM_X": value}  # what a case gets
        p = subprocess.run(["/bin/sh", "-c", script], cwd=tmp_path, capture_output=True, env=env,
                           timeout=10)  # bytes: text mode would make a CR a newline
        want = value
        if "$(printf" in template or "`printf" in template or "$(cat" in template:
            want = value.rstrip("\n")  # command substitution drops trailing newlines
        if "a{x}b" in template or "'a'\"{x}\"'b'" in template:
            want = f"a{value}b"
        assert p.stdout.decode("utf-8", "surrogateescape") == f"[{want}]", (template, script)
        assert not list(tmp_path.iterdir()), (template, script)
