"""Metrics from command output (FORMAT.md §3 "Shell backend output parsing")."""

from __future__ import annotations

import json

import pytest

from doerunner.backends.outparse import (
    Extractor,
    OutputParser,
    combine,
    extract,
    normalize_key,
    parse_output,
)
from doerunner.inputs.patterns import MetricPattern, compile_pattern


def test_key_value_line_exact():
    assert parse_output("p95=0.050 p99=0.080 errors=0\n") == {
        "p95": 0.05, "p99": 0.08, "errors": 0}


def test_ints_stay_ints_and_floats_stay_floats():
    m = parse_output("a=42 b=42.0 c=0.05 d=1e-3 e=-7 f=+3 g=.5 h=5.\n")
    assert m == {"a": 42, "b": 42.0, "c": 0.05, "d": 0.001, "e": -7, "f": 3, "g": 0.5,
                 "h": 5.0}
    assert type(m["a"]) is int and type(m["b"]) is float and type(m["e"]) is int


def test_json_ints_and_floats():
    m = parse_output('{"a": 42, "b": 42.0, "c": 1e-3}\n')
    assert m == {"a": 42, "b": 42.0, "c": 0.001}
    assert type(m["a"]) is int and type(m["b"]) is float


@pytest.mark.parametrize("line", [
    "Running p95=0.5",  # a word that is not key=value
    "p95=0.5 done",
    "p95 = 0.5",
    "--threads=4",  # a key must start with a letter or _
    "=5",
    "x=1 =2",
])
def test_lines_that_are_not_all_key_value_are_ignored(line):
    assert parse_output(line + "\n") == {}


def test_mixed_output_keeps_only_metrics_lines():
    out = "starting benchmark\nwarming up a=1 done\nthroughput_rps=1234.5\nbye\n"
    assert parse_output(out) == {"throughput_rps": 1234.5}


def test_json_line_among_other_lines():
    out = 'log line\n{"p95": 0.05, "p99": 0.07}\nanother {not json}\n'
    assert parse_output(out) == {"p95": 0.05, "p99": 0.07}


def test_nested_json_keys_joined_with_underscore():
    out = json.dumps({"latency": {"p95": 0.05, "p50": {"ms": 3}}, "tokens": {"out": 7}})
    assert parse_output(out) == {"latency_p95": 0.05, "latency_p50_ms": 3, "tokens_out": 7}


def test_whole_stdout_pretty_printed_json():
    out = "\n" + json.dumps({"throughput_rps": 900, "latency": {"p99": 0.2},
                             "ext_model": "llama", "runs_list": [1, 2]}, indent=2) + "\n"
    assert parse_output(out) == {"throughput_rps": 900, "latency_p99": 0.2,
                                 "ext_model": "llama"}


def test_whole_stdout_json_not_used_when_not_available():
    out = json.dumps({"a": 1}, indent=2)
    p = OutputParser()
    for line in out.splitlines():
        p.feed_line(line)
    assert p.result(None) == {}
    assert p.result(out) == {"a": 1}


def test_whole_stdout_that_is_not_one_object_is_not_json():
    out = '{"a": 1}\n{"b": 2}\n'  # JSON lines: each line counts, the whole is no object
    assert parse_output(out) == {"a": 1, "b": 2}
    assert parse_output('{\n"a": 1\n} trailing\n') == {}


def test_ext_keys_keep_text_verbatim():
    assert parse_output("ext_model=llama-3 ext_n=007 ext_f=1.50 ext_empty=\n") == {
        "ext_model": "llama-3", "ext_n": "007", "ext_f": "1.50", "ext_empty": ""}
    assert parse_output('{"ext_n": 1.50, "ext_i": 7, "ext_b": true, "ext": {"gpu": "A100"}}') \
        == {"ext_n": "1.50", "ext_i": "7", "ext_b": "true", "ext_gpu": "A100"}


def test_non_numeric_values_ignored():
    assert parse_output("model=llama p95=fast rps=12\n") == {"rps": 12}
    assert parse_output('{"model": "llama", "ok": true, "n": null, "l": [1], "p": 1}') == {
        "p": 1}


def test_json_string_holding_a_number_counts():
    assert parse_output('{"p95": "0.05", "x": " 3 "}') == {"p95": 0.05, "x": 3}


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])
def test_nan_and_infinities_ignored(text):
    assert parse_output(f"x={text} y=1\n") == {"y": 1}


def test_json_nan_and_infinity_ignored():
    assert parse_output('{"x": NaN, "y": Infinity, "z": -Infinity, "w": 2}') == {"w": 2}


def test_reserved_keys_ignored():
    out = ("case_id=9 status=1 run_seconds=5 ts_start=1 ts_end=2 backend=3 exit_code=0 "
           "message=4 violations=5 param_n=1 threshold_p95=2 tag_x=1 note_a=3 "
           "p95=0.1 p99=0.2 throughput_rps=10 errors=2\n")
    assert parse_output(out) == {"p95": 0.1, "p99": 0.2, "throughput_rps": 10, "errors": 2}


def test_reserved_keys_checked_after_normalisation():
    assert parse_output('{"Run-Seconds": 4, "Param": {"n": 1}, "P95": 0.3}') == {"p95": 0.3}


def test_key_normalisation():
    assert normalize_key("Latency.P95-ms") == "latency_p95_ms"
    assert normalize_key("Größe") == "gr__e"
    assert parse_output("Throughput-RPS=5 GPU.util%=80\n") == {"throughput_rps": 5,
                                                             "gpu_util_": 80}


def test_errors_must_be_an_integer():
    assert parse_output("errors=3.0\n") == {"errors": 3}
    assert type(parse_output("errors=3.0\n")["errors"]) is int
    assert parse_output("errors=2.5\n") == {}
    assert parse_output("errors=-1\n") == {}
    assert parse_output('{"errors": 4.0}') == {"errors": 4}
    assert parse_output('{"errors": true}') == {}


def test_later_values_win_within_a_stream():
    assert parse_output("p95=1 x=1\np95=2\n{\"p95\": 3}\n") == {"p95": 3, "x": 1}
    assert parse_output("p95=1 p95=2\n") == {"p95": 2}


def test_stdout_wins_over_stderr():
    assert parse_output("p95=1\n", "p95=2 errors=5\n") == {"p95": 1, "errors": 5}


def test_whole_stdout_json_wins_over_lines():
    out = 'p95=9\n{\n  "p95": 0.5\n}\n'  # not one object as a whole: lines only
    assert parse_output(out) == {"p95": 9}
    assert parse_output('{\n  "p95": 0.5\n}\n', "p95=7\n") == {"p95": 0.5}


def test_combine_matches_parse_output():
    out, err = OutputParser(), OutputParser()
    out.feed_line("a=1 b=1\n")
    err.feed_line("b=2 c=2\r\n")
    assert combine(out, err, None) == {"a": 1, "b": 1, "c": 2}


def test_feed_line_accepts_crlf_and_surrounding_spaces():
    p = OutputParser()
    p.feed_line("  a=1\tb=2  \r\n")
    p.feed_line('  {"c": 3}  \r\n')
    assert p.result() == {"a": 1, "b": 2, "c": 3}


def test_huge_integer_text_does_not_crash():
    assert parse_output("x=" + "9" * 5000 + " y=1\n") == {"y": 1}


def test_value_with_equals_sign():
    assert parse_output("ext_q=a=b n=1\n") == {"ext_q": "a=b", "n": 1}


# -- a whole stdout that is a JSON array of one object (sqlite3 -json) --------------------

def test_whole_stdout_array_of_one_object_is_read_like_the_object():
    # sqlite3 3.40 `sqlite3 :memory: -json "select 3 as n, 1.5 as avg_ms"`, byte for byte
    assert parse_output('[{"n":3,"avg_ms":1.5}]\n') == {"n": 3, "avg_ms": 1.5}
    pretty = '[\n  {\n    "n": 3,\n    "latency": {"p95": 0.5}\n  }\n]\n'  # jq's layout
    assert parse_output(pretty) == {"n": 3, "latency_p95": 0.5}
    assert parse_output(pretty, "n=9 errors=1\n") == {"n": 3, "latency_p95": 0.5, "errors": 1}


@pytest.mark.parametrize("out", [
    '[{"n":3,"avg_ms":1.5},\n{"n":4,"avg_ms":2.5}]\n',  # sqlite3 -json, two rows
    '[{"n":3},{"n":4}]\n',
    "[]\n",
    "[3]\n",
    '[[{"n":3}]]\n',
    '["n=3"]\n',
])
def test_whole_stdout_array_of_anything_else_is_not_read(out):
    assert parse_output(out) == {}


def test_an_array_line_among_other_lines_is_not_read():
    assert parse_output('starting\n[{"n":3}]\n') == {}


# -- metric_<name> patterns ------------------------------------------------------------------

def patterns(**cells: str) -> tuple[MetricPattern, ...]:
    return tuple(compile_pattern(name, text) for name, text in cells.items())


def extracted(stdout: str, stderr: str = "", base: dict | None = None,
              **cells: str) -> tuple[dict, list[str]]:
    out, err = Extractor(patterns(**cells)), Extractor(patterns(**cells))
    out.feed(stdout)
    err.feed(stderr)
    metrics = dict(base or {})
    return metrics, extract(metrics, out, err)


TIMEIT = r"best of \d+: ([0-9.]+) usec"


def test_pattern_group_becomes_the_metric():
    assert extracted("10000 loops, best of 5: 25.3 usec per loop\n", usec_per_loop=TIMEIT,
                     Loops=r"(\d+) loops, best of") == (
        {"usec_per_loop": 25.3, "loops": 10000}, [])


def test_pattern_takes_the_last_match_stdout_over_stderr():
    out = "rate 10/s\nrate 20/s rate 30/s\nsummary\n"
    assert extracted(out, "rate 99/s\n", rate=r"rate (\d+)/s") == ({"rate": 30}, [])
    assert extracted("summary\n", "rate 5/s\nrate 6/s\n", rate=r"rate (\d+)/s") == (
        {"rate": 6}, [])
    # progress printed with carriage returns: each CR ends a line
    assert extracted("done 10%\rdone 55%\rdone 100%\n", pct=r"^done (\d+)%$") == (
        {"pct": 100}, [])


def test_pieces_fed_later_win():
    ex = Extractor(patterns(rate=r"rate (\d+)"))
    ex.feed("rate 1\nrate 2\n")
    ex.feed("other\n")
    ex.feed("rate 3\nnone\n")
    assert ex.found == {"rate": "3"}


def test_pattern_replaces_what_the_output_said():
    assert extracted("p95 is 0.25 s\n", base={"p95": 9.0}, p95=r"p95 is ([0-9.]+)") == (
        {"p95": 0.25}, [])


def test_pattern_that_finds_no_number_leaves_the_metric_empty_with_a_warning():
    assert extracted("nothing here\n", "nor here\n", base={"x": 1}, x=r"x=(\d+)") == (
        {"x": None},
        ["metric 'x' is empty: pattern 'x=(\\d+)' matched no line of stdout or stderr"])
    assert extracted("speed: fast\n", speed=r"speed: (\w+)") == (
        {"speed": None}, ["metric 'speed' is empty: pattern 'speed: (\\w+)' matched 'fast', "
                          "not a number"])
    assert extracted("rows: 1,234\n", rows=r"rows: (\S+)") == (
        {"rows": None}, ["metric 'rows' is empty: pattern 'rows: (\\S+)' matched '1,234', "
                         "not a number"])
    assert extracted("ab\n", x=r"a(c)?b") == (
        {"x": None}, ["metric 'x' is empty: pattern 'a(c)?b' matched '', not a number"])


def test_ext_pattern_keeps_the_text():
    assert extracted("model: llama-3 (v1.50)\n", ext_model=r"model: (\S+)",
                     ext_v=r"\(v([0-9.]+)\)") == ({"ext_model": "llama-3", "ext_v": "1.50"}, [])


def test_a_backtracking_pattern_is_stopped_with_a_warning(monkeypatch):
    import time

    from doerunner.backends import outparse

    monkeypatch.setattr(outparse, "PATTERN_BUDGET_S", 0.2)
    slow, fine = compile_pattern("x", r"(a|aa)+$"), compile_pattern("n", r"n=(\d+)")
    out = outparse.Extractor((slow, fine))
    err = outparse.Extractor((slow, fine))
    t0 = time.monotonic()
    out.feed("n=3\n" + "a" * 60 + "b\n" + "a" * 60 + "b\n")
    assert time.monotonic() - t0 < 1.0  # the budget is the stream's, not each line's
    metrics: dict = {}
    assert outparse.extract(metrics, out, err) == [
        "metric 'x' is empty: pattern '(a|aa)+$' took over 0.2 s on the output and was "
        "stopped (it backtracks: simplify it, e.g. no nested repeats like (\\d+)+)"]
    assert metrics == {"x": None, "n": 3}


def test_patterns_see_lines_ended_by_cr_only():
    from doerunner.backends.outparse import Extractor

    e = Extractor((compile_pattern("pct", r"(\d+)%"),))
    e.feed("10%\r20%\r30%\r\n\x0c40%x\n")  # a form feed does not end a line
    assert e.found == {"pct": "40"}
    e.feed("50%\r60%")
    assert e.found == {"pct": "60"}
