"""Issue 17: a parameter value can never run code, whatever the quoting in ``cmd``.

The red team's reproduction (``echo "x={x}"`` with ``x=$(touch PWNED)``) through the CLI, and
every quoting context checked against the real ``/bin/sh`` with generated values: the shell
prints the value exactly and creates nothing. Templates where no quoting is safe
(backquotes, here-documents) are refused before anything runs."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doerunner.cli import cli
from doerunner.inputs.template import TemplateError, render, shell_problems

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


def test_templates_with_no_safe_quoting_are_refused(tmp_path) -> None:
    (tmp_path / "cases.csv").write_text(
        "case_id,cmd,x\n"
        "bq,echo `echo {x}`,1\n"
        'hd,"cat <<EOF\n{x}\nEOF",2\n')
    r = CliRunner().invoke(cli, ["run", "--cases", str(tmp_path / "cases.csv"),
                                 "--out", str(tmp_path / "m.csv")])
    assert r.exit_code == 4
    assert r.output.splitlines() == [
        f"{tmp_path / 'cases.csv'}:2:2: cmd: {{x}} is inside backquotes, where no quoting "
        "makes a value safe: write $(...) instead of `...`",
        f"{tmp_path / 'cases.csv'}:3:2: cmd: {{x}} is inside a here-document, where no "
        "quoting makes a value safe: pass it as an argument or read $SRD_PARAM_X instead",
        "srd: 2 problems; nothing was run"]
    assert not (tmp_path / "m.csv").exists() and not (tmp_path / "m_run").exists()


def test_refusals_and_what_is_not_refused() -> None:
    assert shell_problems("cat <<'E'\nplain\nE\necho \"{x}\" `date`") == []
    assert shell_problems("echo '`{x}`'") == []  # backquotes inside single quotes are text
    assert shell_problems('echo "`echo {x}`"') == [
        "cmd: {x} is inside backquotes, where no quoting makes a value safe: write $(...) "
        "instead of `...`"]
    try:
        render("echo `{x}`", {"x": "1"})
    except TemplateError as e:
        assert "inside backquotes" in str(e)
    else:
        raise AssertionError("a backquoted placeholder was rendered")


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
        p = subprocess.run(["/bin/sh", "-c", script], cwd=tmp_path, capture_output=True,
                           text=True, timeout=10)
        want = value
        if "$(printf" in template:
            want = value.rstrip("\n")  # command substitution drops trailing newlines
        if "a{x}b" in template or "'a'\"{x}\"'b'" in template:
            want = f"a{value}b"
        assert p.stdout == f"[{want}]", (template, script)
        assert not list(tmp_path.iterdir()), (template, script)
