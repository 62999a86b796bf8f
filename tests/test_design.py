"""`srd design`: design.yaml → cases.csv, against exact expected files checked by hand.

Each tests/golden/design/<name>.yaml has its <name>.csv beside it. The golden files were
generated once and then checked row by row against pyDOE3's coded matrix (see the comments in
each test); regenerate only when a change in the design is intended.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from doerunner.cli import cli
from doerunner.errors import InputError
from doerunner.inputs.cases import read_cases
from doerunner.inputs.design import design_to_csv, generate, load_design

GOLDEN = Path(__file__).parent / "golden" / "design"
NAMES = ("full", "full_random", "fractional", "pb", "lhs", "zip", "exclude", "replicates")


def _make(tmp_path: Path, name: str) -> Path:
    out = tmp_path / f"{name}.csv"
    design_to_csv(GOLDEN / f"{name}.yaml", out)
    return out


def _rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()]


def _yaml(tmp_path: Path, text: str, name: str = "design.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _problems(tmp_path: Path, text: str) -> list[str]:
    p = _yaml(tmp_path, text)
    with pytest.raises(InputError) as e:
        generate(load_design(p))
    return [str(x).replace(str(tmp_path) + "/", "") for x in e.value.problems]


@pytest.mark.parametrize("name", NAMES)
def test_golden_file_exact(tmp_path: Path, name: str) -> None:
    out = _make(tmp_path, name)
    assert out.read_bytes() == (GOLDEN / f"{name}.csv").read_bytes()
    assert b"\r" not in out.read_bytes()


@pytest.mark.parametrize("name", NAMES)
def test_golden_file_reads_back(tmp_path: Path, name: str) -> None:
    out = _make(tmp_path, name)
    rows = _rows(out)
    cases = read_cases(out)
    assert [c.case_id for c in cases] == [r[0] for r in rows[1:]]


def test_full_factorial_standard_order(tmp_path: Path) -> None:
    cases = read_cases(_make(tmp_path, "full"))
    assert len(cases) == 12
    # first factor fastest (pyDOE3.fullfact): batch_size cycles 1,4,8; compile flips at row 7
    assert [c.params["batch_size"] for c in cases[:3]] == ["1", "4", "8"]
    assert [c.params["compile"] for c in cases] == ["false"] * 6 + ["true"] * 6
    assert cases[0].cmd == "python3 bench.py --bs {batch_size} --dtype {dtype} --compile {compile}"
    assert cases[0].timeout_s == 60 and cases[0].repeat == 3
    assert cases[0].tags == {"sweep": True, "nightly": True}
    assert cases[0].notes == {"owner": "perf-team"}
    # reserved columns first in their fixed order, factors in YAML order, then the rest in
    # YAML order (note_owner was written before threshold_p95)
    assert _rows(tmp_path / "full.csv")[0] == [
        "case_id", "backend", "cmd", "timeout_s", "repeat", "tags", "batch_size", "dtype",
        "compile", "note_owner", "threshold_p95"]


def test_randomized_full_factorial_is_the_same_set(tmp_path: Path) -> None:
    plain = _rows(_make(tmp_path, "full"))
    shuffled = _rows(_make(tmp_path, "full_random"))
    assert plain[0] == shuffled[0]
    assert sorted(r[1:] for r in plain[1:]) == sorted(r[1:] for r in shuffled[1:])
    assert [r[1:] for r in plain[1:]] != [r[1:] for r in shuffled[1:]]
    # ids follow the run order: the file order is the run order
    assert [r[0] for r in shuffled[1:]] == [f"bs-{i:03d}" for i in range(1, 13)]


def test_fractional_is_half_fraction_with_d_equal_abc(tmp_path: Path) -> None:
    cases = read_cases(_make(tmp_path, "fractional"))
    assert len(cases) == 8
    second = {"batch_size": "8", "dtype": "bfloat16", "threads": "16", "pinned": "pin"}
    for c in cases:
        a, b, cc, d = (1 if c.params[k] == second[k] else -1 for k in second)
        assert d == a * b * cc
    assert len({tuple(c.params.values()) for c in cases}) == 8


def test_plackett_burman_7_factors_8_rows_balanced(tmp_path: Path) -> None:
    cases = read_cases(_make(tmp_path, "pb"))
    assert len(cases) == 8
    for name in "abcdefg":
        assert sorted(Counter(c.params[name] for c in cases).values()) == [4, 4]
    # on/off stay text (only true/false are booleans in design.yaml)
    assert {c.params["d"] for c in cases} == {"on", "off"}


def test_lhs_in_range_integers_and_strata(tmp_path: Path) -> None:
    cases = read_cases(_make(tmp_path, "lhs"))
    assert len(cases) == 8
    threads = [int(c.params["threads"]) for c in cases]
    assert all(1 <= t <= 16 for t in threads)
    assert sorted((t - 1) // 2 for t in threads) == list(range(8))  # one per stratum
    loads = [float(c.params["load"]) for c in cases]
    assert all(0.1 <= x <= 0.9 for x in loads)
    assert sorted(int((x - 0.1) / 0.1) for x in loads) == list(range(8))
    assert Counter(c.params["dtype"] for c in cases) == {"float32": 4, "bfloat16": 4}


def test_zip_lockstep(tmp_path: Path) -> None:
    cases = read_cases(_make(tmp_path, "zip"))
    assert [(c.case_id, c.params["model"], c.params["batch_size"], c.params["lr"])
            for c in cases] == [("case-001", "tiny", "32", "0.001"),
                                ("case-002", "small", "16", "0.0005"),
                                ("case-003", "base", "8", "0.00001")]


def test_exclusions(tmp_path: Path) -> None:
    cases = read_cases(_make(tmp_path, "exclude"))
    points = {(c.params["batch_size"], c.params["dtype"], c.params["threads"]) for c in cases}
    assert len(cases) == len(points) == 11
    assert ("8", "float32", "1") not in points and ("8", "float32", "16") in points
    assert ("4", "bfloat16", "1") not in points and ("4", "bfloat16", "4") in points
    assert not any(p[:2] == ("1", "bfloat16") for p in points)


def test_replicates(tmp_path: Path) -> None:
    cases = read_cases(_make(tmp_path, "replicates"))
    assert len(cases) == 12
    counts = Counter((c.params["users"], c.params["payload_kb"]) for c in cases)
    assert counts == {("1", "1"): 3, ("1", "64"): 3, ("10", "1"): 3, ("10", "64"): 3}


def test_replicates_without_randomizing_repeat_the_whole_design(tmp_path: Path) -> None:
    p = _yaml(tmp_path, "factors: {x: [1, 2, 3]}\nreplicates: 2\nrandomize: false\n")
    g = generate(load_design(p))
    assert [r[1] for r in g.rows] == ["1", "2", "3", "1", "2", "3"]
    assert [r[0] for r in g.rows] == [f"case-{i:03d}" for i in range(1, 7)]


def test_randomization_reproducible_from_seed(tmp_path: Path) -> None:
    text = (GOLDEN / "full_random.yaml").read_text()
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    shutil.copy(GOLDEN / "full_random.yaml", a / "d.yaml")
    _yaml(b, text.replace("seed: 42", "seed: 43"), "d.yaml")
    design_to_csv(a / "d.yaml", a / "1.csv")
    design_to_csv(a / "d.yaml", a / "2.csv")
    design_to_csv(b / "d.yaml", b / "1.csv")
    assert (a / "1.csv").read_bytes() == (a / "2.csv").read_bytes()
    first, other = _rows(a / "1.csv"), _rows(b / "1.csv")
    assert [r[1:] for r in first] != [r[1:] for r in other]
    assert sorted(r[1:] for r in first[1:]) == sorted(r[1:] for r in other[1:])


def test_values_in_shortest_form(tmp_path: Path) -> None:
    p = _yaml(tmp_path, "factors:\n  a: [1, 0.5, 2.0, 1.0e-7, -3]\n  b: [true]\n"
                        "randomize: false\ntemplate:\n  note_x: 12.50\n  tag_y: true\n")
    g = generate(load_design(p))
    assert [r[1] for r in g.rows] == ["1", "0.5", "2", "0.0000001", "-3"]
    assert g.rows[0][2:] == ("true", "12.5", "true")


def test_ids_widen_past_999(tmp_path: Path) -> None:
    p = _yaml(tmp_path, "factors: {x: [1, 2]}\nreplicates: 500\nprefix: w\n")
    g = generate(load_design(p))
    assert g.rows[0][0] == "w-0001" and g.rows[-1][0] == "w-1000"


# --- errors: every message exact -------------------------------------------------------------


def test_errors_all_at_once_with_lines(tmp_path: Path) -> None:
    text = """\
design: ful
factors:
  batch_size: []
  dtype: [a, b, c]
  tag_x: [1]
  case_id: [1]
  'bad name': [1]
replicate: 2
exclude:
  - {batchsize: 8}
template:
  case_id: x
  dtype: 3
  ext_x: 1
seed: -1
"""
    assert _problems(tmp_path, text) == [
        "design.yaml:1:0: design: unknown design 'ful' (full, fractional, plackett-burman, "
        "lhs, zip)",
        "design.yaml:3:0: factors.batch_size: levels must be a non-empty list or a range "
        "{min, max}",
        "design.yaml:5:0: factors.tag_x: a factor name cannot start with 'tag_' (put such "
        "columns under `template`)",
        "design.yaml:6:0: factors.case_id: 'case_id' is a reserved column of cases.csv; put it "
        "under `template`",
        "design.yaml:7:0: factors.bad name: a factor name must use A-Z a-z 0-9 . _ -",
        "design.yaml:8:0: replicate: unknown key (did you mean 'replicates'?)",
        "design.yaml:10:0: exclude[0].batchsize: unknown factor 'batchsize' (did you mean "
        "'batch_size'?)",
        "design.yaml:12:0: template.case_id: case ids are made by srd design (see `prefix`)",
        "design.yaml:13:0: template.dtype: parameter 'dtype' is also a factor",
        "design.yaml:14:0: template.ext_x: ext_* columns are reserved for backend output",
        "design.yaml:15:0: seed: must be an integer from 0 to 4294967295",
    ]


def test_error_fractional_needs_two_levels(tmp_path: Path) -> None:
    text = ("design: fractional\ngenerator: a b ab\nfactors:\n  bs: [1, 8]\n"
            "  dtype: [fp32, bf16, fp16]\n  threads: [1, 2]\n")
    assert _problems(tmp_path, text) == [
        "design.yaml:5:0: design: fractional needs 2 levels per factor; dtype has 3"]


def test_error_fractional_generator_or_resolution(tmp_path: Path) -> None:
    base = "design: fractional\nfactors:\n  a: [1, 2]\n  b: [1, 2]\n  c: [1, 2]\n"
    assert _problems(tmp_path, base) == [
        'design.yaml:1:0: design: fractional needs either `generator` (like "a b c abc") or '
        "`resolution` (3, 4, 5...)"]
    assert _problems(tmp_path, base + "generator: a b\n") == [
        "design.yaml:6:0: generator: has 2 words but there are 3 factors"]
    assert _problems(tmp_path, base + "generator: a b z\n") == [
        "design.yaml:6:0: generator: pyDOE3 rejects 'a b z': Use the letters `a b c` for the "
        "main factors."]
    assert _problems(tmp_path, base + "resolution: 5\n") == [
        "design.yaml:6:0: resolution: pyDOE3 cannot build a resolution 5 design for 3 factors "
        "(design not possible); give a `generator` instead"]
    assert _problems(tmp_path, base + "resolution: 3\nsamples: 4\n") == [
        "design.yaml:7:0: samples: only for design lhs (this is design fractional)"]


def test_fractional_by_resolution(tmp_path: Path) -> None:
    text = "design: fractional\nresolution: 4\nrandomize: false\nfactors:\n" + "".join(
        f"  f{i}: [lo, hi]\n" for i in range(5))
    g = generate(load_design(_yaml(tmp_path, text)))
    assert len(g.rows) == 16  # 2^(5-1), resolution V even, from pyDOE3's fracfact_by_res


def test_error_range_needs_lhs_and_zip_lengths(tmp_path: Path) -> None:
    text = "design: zip\nfactors:\n  a: [1, 2]\n  b: [1, 2, 3]\n  t: {min: 1, max: 16}\n"
    assert _problems(tmp_path, text) == [
        "design.yaml:2:0: factors: zip takes levels in lockstep: every factor needs the same "
        "number of levels (a has 2, b has 3)",
        "design.yaml:5:0: factors.t: a range {min, max} needs design lhs; design zip needs a "
        "list of levels",
    ]


def test_error_lhs_options_and_ranges(tmp_path: Path) -> None:
    text = ("design: lhs\ncriterion: maxmin\nfactors:\n  a: {min: 5, max: 1}\n"
            "  b: {min: 1, maxi: 2}\n  c: {min: 1.2, max: 1.8, integer: true}\n"
            "  d: {min: x, max: 2, integer: 1}\n")
    assert _problems(tmp_path, text) == [
        "design.yaml:1:0: samples: lhs needs `samples`: an integer from 1 to 1000000",
        "design.yaml:2:0: criterion: unknown criterion 'maxmin' (maximin, center, "
        "centermaximin, correlation)",
        "design.yaml:4:0: factors.a: range min 5 is above max 1",
        "design.yaml:5:0: factors.b.maxi: unknown key in a range (min, max, integer)",
        "design.yaml:5:0: factors.b.max: missing: a range needs both min and max",
        "design.yaml:6:0: factors.c: no integer between 1.2 and 1.8",
        "design.yaml:7:0: factors.d.min: must be a number",
        "design.yaml:7:0: factors.d.integer: must be true or false",
    ]


def test_error_exclusion_operators(tmp_path: Path) -> None:
    text = """\
factors:
  bs: [1, 8]
  dtype: [fp32, bf16]
exclude:
  - {dtype: {">": 3}}
  - {bs: {">=": x, "~": 1}}
  - {bs: {in: 8}}
  - []
"""
    assert _problems(tmp_path, text) == [
        "design.yaml:5:0: exclude[0].dtype.>: '>' needs a factor with numeric levels; dtype "
        "has others",
        "design.yaml:6:0: exclude[1].bs.>=: '>=' needs a number",
        "design.yaml:6:0: exclude[1].bs.~: unknown operator '~' (<, <=, >, >=, ==, !=, in)",
        "design.yaml:7:0: exclude[2].bs.in: `in` needs a list of values",
        "design.yaml:8:0: exclude[3]: a rule must be a non-empty mapping of factor names to "
        "values",
    ]


def test_error_everything_excluded(tmp_path: Path) -> None:
    text = "factors:\n  bs: [1, 8]\nexclude:\n  - {bs: {'<': 10}}\n"
    assert _problems(tmp_path, text) == [
        "design.yaml:3:0: exclude: every one of the 2 design points is excluded"]


def test_error_yaml_syntax(tmp_path: Path) -> None:
    assert _problems(tmp_path, "design: full\nfactors:\n  a: [1, 2\n  b: 3\n") == [
        "design.yaml:4:0: YAML syntax error: while parsing a flow sequence: expected ',' or "
        "']', but got ':'"]


def test_error_shapes_of_the_file(tmp_path: Path) -> None:
    assert _problems(tmp_path, "") == [
        "design.yaml:0:0: the file is empty: it needs at least `design` and `factors`"]
    assert _problems(tmp_path, "- a\n") == [
        "design.yaml:1:0: the top level must be a mapping of keys (design, factors, template, "
        "...)"]
    assert _problems(tmp_path, "design: full\n") == [
        "design.yaml:0:0: factors: missing: name each factor with its levels"]
    assert _problems(tmp_path, "factors: {a: [1]}\nfactors: {}\n") == [
        "design.yaml:2:0: factors: key given twice",
        "design.yaml:2:0: factors: must be a mapping of factor names to their levels"]
    assert _problems(tmp_path, "factors: {a: [1, 1], b: [x, {y: 1}]}\n") == [
        "design.yaml:1:0: factors.a[1]: level 1 is listed twice",
        "design.yaml:1:0: factors.b[1]: a level must be a number, a string or true/false "
        "(quote dates and other values)",
    ]
    assert _problems(tmp_path, "factors: {a: [1]}\nrandomize: yes\nprefix: 'a b'\n") == [
        "design.yaml:2:0: randomize: must be true or false",
        "design.yaml:3:0: prefix: must be 1-100 characters of A-Z a-z 0-9 . _ -",
    ]


def test_error_cmd_placeholder_names_no_parameter(tmp_path: Path) -> None:
    text = ("factors:\n  batch_size: [1]\ntemplate:\n  const: 3\n"
            "  cmd: 'b --bs {batchsize} --c {const} --x {{x}} ${HOME} {nope}'\n")
    assert _problems(tmp_path, text) == [
        "design.yaml:5:0: template.cmd: uses {batchsize} but there is no factor or parameter "
        "'batchsize' (did you mean {batch_size}? write {{batchsize}} for literal braces)",
        "design.yaml:5:0: template.cmd: uses {nope} but there is no factor or parameter 'nope' "
        "(write {{nope}} for literal braces)",
    ]


def test_error_env_name_clash(tmp_path: Path) -> None:
    assert _problems(tmp_path, "factors:\n  a.b: [1]\n  a_b: [2]\n") == [
        "design.yaml:3:0: factors.a_b: factors 'a.b' and 'a_b' both become SRD_PARAM_A_B"]


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "cases.csv"
    r = CliRunner().invoke(cli, ["design", str(GOLDEN / "full.yaml"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert r.output == f"{out}: 12 cases, design full factorial: 12 points, design order\n"
    assert out.read_bytes() == (GOLDEN / "full.csv").read_bytes()


def test_cli_refuses_existing_out_without_force(tmp_path: Path) -> None:
    out = tmp_path / "cases.csv"
    out.write_text("keep me\n")
    r = CliRunner().invoke(cli, ["design", str(GOLDEN / "replicates.yaml"), "--out", str(out)])
    assert r.exit_code == 4
    assert f"srd: error: --out {out} exists; pass --force to replace it" in r.output
    assert out.read_text() == "keep me\n"
    r = CliRunner().invoke(cli, ["design", str(GOLDEN / "replicates.yaml"), "--out", str(out),
                                 "--force"])
    assert r.exit_code == 0, r.output
    assert r.output == (f"{out}: 12 cases, design full factorial: 4 points, 3 replicates, "
                        "run order randomized with seed 1\n")
    assert out.read_bytes() == (GOLDEN / "replicates.csv").read_bytes()


def test_cli_bad_yaml_exit_4_and_no_file(tmp_path: Path) -> None:
    p = _yaml(tmp_path, "design: ful\nfactors:\n  bs: []\n")
    out = tmp_path / "cases.csv"
    r = CliRunner().invoke(cli, ["design", str(p), "--out", str(out)])
    assert r.exit_code == 4
    assert r.output.splitlines()[:2] == [
        f"{p}:1:0: design: unknown design 'ful' (full, fractional, plackett-burman, lhs, zip)",
        f"{p}:3:0: factors.bs: levels must be a non-empty list or a range {{min, max}}"]
    assert not out.exists()
    assert [x.name for x in tmp_path.iterdir()] == ["design.yaml"]


def test_cli_missing_yaml(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["design", str(tmp_path / "nope.yaml"), "--out",
                                 str(tmp_path / "c.csv")])
    assert r.exit_code == 4
    assert r.output == f"{tmp_path / 'nope.yaml'}:0:0: cannot read: no such file\n"


def test_example_design_reads_back(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "design.yaml"
    out = tmp_path / "cases.csv"
    g = design_to_csv(example, out)
    cases = read_cases(out)
    assert len(cases) == len(g.rows) == 10
    assert all("examples/loadtest.py --users {users}" in (c.cmd or "") for c in cases)


def test_exclusion_values_match_as_cells(tmp_path: Path) -> None:
    # "8" in a rule matches the level 8, and 0.50 matches 0.5: a rule means what its cell says
    p = _yaml(tmp_path, "factors:\n  bs: [1, 8]\n  f: [0.5, 1]\nrandomize: false\n"
                        "exclude:\n  - {bs: '8'}\n  - {f: {'==': 0.50}, bs: {in: [1, 2]}}\n")
    g = generate(load_design(p))
    assert [r[1:] for r in g.rows] == [("1", "1")]


def test_near_misses_of_reserved_columns_are_refused_with_did_you_mean(tmp_path: Path) -> None:
    assert _problems(tmp_path, "factors:\n  timeout: [1, 2]\n  size: [1, 2]\n"
                               "template:\n  cmd: echo {size}\n  repeats: 3\n") == [
        "design.yaml:2:0: factors.timeout: 'timeout' is too close to 'timeout_s', which "
        "cases.csv reserves: did you mean 'timeout_s' (then put it under `template`), or name "
        "the factor otherwise",
        "design.yaml:6:0: template.repeats: would be read as a parameter: did you mean "
        "'repeat'? (a parameter of that name is written 'param_repeats')",
    ]


# --- case ids from the values: `id` ------------------------------------------------------------


def test_id_template_makes_ids_from_the_values(tmp_path: Path) -> None:
    p = _yaml(tmp_path, "factors:\n  compressor: [gzip, xz]\n  level: [1, 9]\n"
                        "  ratio: [0.5]\nid: 'c.{compressor}-l{level}_r{ratio}'\n"
                        "randomize: false\ntemplate:\n  cmd: '{compressor} -{level}'\n")
    g = generate(load_design(p))
    assert [r[0] for r in g.rows] == ["c.gzip-l1_r0.5", "c.xz-l1_r0.5", "c.gzip-l9_r0.5",
                                      "c.xz-l9_r0.5"]
    assert [c.case_id for c in read_cases(_make_csv(tmp_path, p))] == [r[0] for r in g.rows]


def test_id_template_with_replicates_numbers_them_and_keeps_the_run_order(
        tmp_path: Path) -> None:
    text = "factors:\n  a: [1, 2]\n  b: [x, y]\nreplicates: 2\nseed: 3\n"
    numbered = generate(load_design(_yaml(tmp_path, text)))
    named = generate(load_design(_yaml(tmp_path, text + "id: '{a}{b}'\n", "named.yaml")))
    # the same shuffled run order; each id is the point's, then the replicate
    assert [r[1:] for r in named.rows] == [r[1:] for r in numbered.rows]
    assert sorted(r[0] for r in named.rows) == [
        "1x-r1", "1x-r2", "1y-r1", "1y-r2", "2x-r1", "2x-r2", "2y-r1", "2y-r2"]
    assert all(r[0].startswith(r[1] + r[2] + "-r") for r in named.rows)


def test_id_template_errors(tmp_path: Path) -> None:
    assert _problems(tmp_path, "factors:\n  compressor: [gzip]\n  level: [1]\nprefix: p\n"
                               "id: '{compresor}/{level}$'\n") == [
        "design.yaml:4:0: prefix: the case ids are made by `id`: drop `prefix`",
        "design.yaml:5:0: id: uses {compresor} but there is no factor 'compresor' (did you "
        "mean {compressor}?)",
        "design.yaml:5:0: id: may hold {factor} placeholders and A-Z a-z 0-9 . _ - only, "
        "not '$' '/'",
    ]
    assert _problems(tmp_path, "factors:\n  a: [1]\nid: 3\n") == [
        'design.yaml:3:0: id: must be a string of {factor} placeholders, like '
        '"{compressor}-l{level}"']


def test_id_template_collisions_and_bad_values_name_the_points(tmp_path: Path) -> None:
    assert _problems(tmp_path, "factors:\n  c: [gzip, GZIP, xz]\n  level: [1, 9]\n"
                               "id: '{c}'\nrandomize: false\n") == [
        "design.yaml:4:0: id: points {c: gzip, level: 1} and {c: GZIP, level: 1} both give "
        "the case id 'GZIP' (unique ignoring case: put every factor that varies in `id`)",
        "design.yaml:4:0: id: points {c: xz, level: 1} and {c: xz, level: 9} both give "
        "the case id 'xz' (unique ignoring case: put every factor that varies in `id`)",
    ]
    # a value's other characters become _ (as in -L/-P sweeps): a/b and a b meet as a_b
    assert _problems(tmp_path, "factors:\n  path: ['a/b', 'a b', c]\nid: 'p{path}'\n") == [
        "design.yaml:3:0: id: points {path: a/b} and {path: a b} both give the case id "
        "'pa_b' (unique ignoring case: put every factor that varies in `id`)"]
    p = _yaml(tmp_path, "factors:\n  model: ['org/model-b', 'org/model-c']\n"
                        "id: '{model}'\nrandomize: false\ntemplate:\n  cmd: echo {model}\n")
    out = tmp_path / "models.csv"
    r = CliRunner().invoke(cli, ["design", str(p), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text().splitlines()[1:] == ["org_model-b,echo {model},org/model-b",
                                                "org_model-c,echo {model},org/model-c"]


def test_cli_design_writes_the_ids(tmp_path: Path) -> None:
    p = _yaml(tmp_path, "factors:\n  n: [1, 2]\nid: 'n{n}'\nrandomize: false\n"
                        "template:\n  cmd: echo {n}\n")
    out = tmp_path / "cases.csv"
    r = CliRunner().invoke(cli, ["design", str(p), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text() == "case_id,cmd,n\nn1,echo {n},1\nn2,echo {n},2\n"


def _make_csv(tmp_path: Path, design: Path) -> Path:
    out = tmp_path / f"{design.stem}.csv"
    design_to_csv(design, out)
    return out
