"""backend=hf end to end: a tiny random-weight Llama and BPE tokenizer built offline, `srd run`
in a real subprocess through the real loading and generation code."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from doerunner.backends import hf
from doerunner.backends.base import ExecContext
from doerunner.campaign.runner import RunnerSettings, run_case
from doerunner.errors import InputError
from doerunner.inputs.cases import read_cases

from . import nvmlsim
from .conftest import REPO, run_srd

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
PROMPTS = "The quick brown fox\nHello world, this is a test\n\nA benchmark runner measures energy\n"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/make_tiny_model.py, run in-process (torch is imported here already)."""
    spec = importlib.util.spec_from_file_location("make_tiny_model",
                                                  REPO / "examples" / "make_tiny_model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build(tmp_path_factory.mktemp("tiny-model"))


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return {r["case_id"]: r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def sweep(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """One `srd run` over: three batch sizes of one model (loaded once), a bad model path,
    a generation killed at its 2 s timeout, and a case after it (a new worker)."""
    d = tmp_path_factory.mktemp("hf-sweep")
    (d / "prompts.txt").write_text(PROMPTS)
    m = tiny_model
    (d / "cases.csv").write_text(
        "case_id,backend,model,prompts_file,num_prompts,batch_size,max_new_tokens,"
        "min_new_tokens,dtype,device,timeout_s,warmup,label\n"
        f"b1,hf,{m},prompts.txt,6,1,8,8,float32,cpu,,auto,x\n"
        f"b2,hf,{m},prompts.txt,6,2,8,8,float32,cpu,,2,x\n"
        f"b3,hf,{m},prompts.txt,6,3,8,8,float32,cpu,,2,x\n"
        f"bad,hf,{d / 'no-such-model'},prompts.txt,,,8,8,,cpu,,,x\n"
        f"slow,hf,{m},prompts.txt,1,1,100000,100000,float32,cpu,2,0,x\n"
        f"after,hf,{m},prompts.txt,4,2,8,8,float32,cpu,,1,x\n")
    t0 = time.monotonic()
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", cwd=d, env=OFFLINE)
    return d, p, read_rows(d / "m.csv"), time.monotonic() - t0


def f(row: dict[str, str], name: str) -> float:
    return float(row[name])


def test_statuses_and_exit_code(sweep) -> None:
    _, p, rows, _ = sweep
    assert p.returncode == 3, p.stderr
    assert {k: r["status"] for k, r in rows.items()} == {
        "b1": "OK", "b2": "OK", "b3": "OK", "bad": "FAIL", "slow": "TIMEOUT", "after": "OK"}
    assert rows["b1"]["param_label"] == "x"  # other parameters stay labels


@pytest.mark.parametrize("case, batch", [("b1", 1), ("b2", 2), ("b3", 3), ("after", 2)])
def test_metrics_present_and_consistent(sweep, case: str, batch: int) -> None:
    _, _, rows, _ = sweep
    r = rows[case]
    n = int(r["param_num_prompts"])
    assert int(r["tokens_out"]) == n * 8  # min_new_tokens = max_new_tokens
    assert int(r["tokens_in"]) > 0
    assert f(r, "p50") <= f(r, "p95") <= f(r, "p99")
    assert f(r, "ttft_p50") <= f(r, "ttft_p95")
    assert 0 < f(r, "ttft_p50") <= f(r, "p50")
    assert 0 < f(r, "tpot_mean") < f(r, "latency_avg")
    assert f(r, "batch_effective_size") == batch
    # Every batch is full, so the generation time is n / batch batch latencies.
    assert f(r, "throughput_rps") == pytest.approx(batch / f(r, "latency_avg"), rel=0.01)
    assert f(r, "throughput_rps") == pytest.approx(n / f(r, "generate_s"), rel=0.01)
    assert f(r, "tokens_per_s") == pytest.approx(int(r["tokens_out"]) / f(r, "generate_s"),
                                                 rel=0.001)
    assert f(r, "generate_s") <= f(r, "run_seconds")
    assert f(r, "mem_peak_mb") > 10
    assert r["errors"] == "0" and r["message"] == ""
    # The worker's share of the host in the window: its CPU and threads (torch's pool).
    assert f(r, "cpu_user_s") > 0 and int(r["threads_active"]) >= 2
    assert f(r, "cpu_util") == pytest.approx(
        (f(r, "cpu_user_s") + f(r, "cpu_sys_s")) / f(r, "run_seconds") * 100, abs=0.5)


def test_warmup_is_per_request(sweep) -> None:
    _, _, rows, _ = sweep
    assert rows["b2"]["warmup_runs"] == "2" and rows["b2"]["warmup_converged"] == ""
    b1 = rows["b1"]
    assert 5 <= int(b1["warmup_runs"]) <= 50
    # The CV is written with 2 decimals: a converged 0.049 reads 0.05.
    if b1["warmup_converged"] == "1":
        assert f(b1, "warmup_final_cv") <= 0.05
    else:
        assert f(b1, "warmup_final_cv") >= 0.05


def test_model_loaded_once_for_several_cases(sweep) -> None:
    d, _, rows, _ = sweep
    b1, b2, b3 = rows["b1"], rows["b2"], rows["b3"]
    assert f(b1, "model_load_s") > 0
    assert f(b2, "model_load_s") == 0 and f(b3, "model_load_s") == 0
    assert b1["ext_worker_pid"] == b2["ext_worker_pid"] == b3["ext_worker_pid"]
    assert b1["ext_model_loads"] == b2["ext_model_loads"] == b3["ext_model_loads"] == "1"
    log = (d / "m_run" / "logs" / "hf_worker.log").read_text()
    loads = re.findall(r"hf worker (\d+): loaded", log)
    assert loads.count(b1["ext_worker_pid"]) == 1


def test_bad_model_path_fails_with_a_clear_message(sweep) -> None:
    d, _, rows, _ = sweep
    r = rows["bad"]
    assert r["status"] == "FAIL" and r["errors"] == "1"
    assert r["message"] == f"cannot load model '{d / 'no-such-model'}': no such directory"


def test_timeout_kills_the_worker_and_the_next_case_runs(sweep) -> None:
    _, _, rows, elapsed = sweep
    slow, after = rows["slow"], rows["after"]
    assert slow["message"] == "timed out after 2 s"
    assert f(slow, "run_seconds") == pytest.approx(2.0, abs=0.01)
    # The next case ran in a new worker, which loaded the model again.
    assert after["ext_worker_pid"] != rows["b1"]["ext_worker_pid"]
    assert after["ext_model_loads"] == "1" and f(after, "model_load_s") > 0
    assert not _alive(int(rows["b1"]["ext_worker_pid"]))
    assert not _alive(int(after["ext_worker_pid"]))  # close() stopped it
    assert elapsed < 60


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in \
        Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]


def test_typo_and_bad_values_exit_4_with_suggestions(tmp_path, tiny_model) -> None:
    (tmp_path / "cases.csv").write_text(
        "case_id,backend,model,prompt,max_new_token,batchsize,batch_size,dtype,temperature\n"
        f"a,hf,{tiny_model},hi,8,2,x,float8,-1\n")
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", cwd=tmp_path, env=OFFLINE)
    assert p.returncode == 4, p.stderr
    err = p.stderr
    assert "unknown hf parameter 'max_new_token': did you mean 'max_new_tokens'?" in err
    assert "unknown hf parameter 'batchsize': did you mean 'batch_size'?" in err
    assert "batch_size must be an integer >= 1, got 'x'" in err
    assert "dtype must be one of auto, float32, float16, bfloat16, got 'float8'" in err
    assert "temperature must be a number > 0, got '-1'" in err
    assert "cases.csv:2:" in err
    assert not (tmp_path / "m.csv").exists()


def test_prompt_checks(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.txt").write_text("\n  \n")
    (tmp_path / "cases.csv").write_text(
        "case_id,backend,model,prompt,prompts_file,min_new_tokens\n"
        "a,hf,m,,,\nb,hf,m,hi,empty.txt,\nc,hf,m,,empty.txt,\nd,hf,,,missing.txt,40\n")
    with pytest.raises(InputError) as e:
        read_cases(tmp_path / "cases.csv")
    text = str(e.value)
    assert "cases.csv:2:4: prompt: missing value (give prompt or prompts_file)" in text
    assert "cases.csv:3:5: give prompt or prompts_file, not both" in text
    assert "prompts_file 'empty.txt' holds no prompt" not in text  # absolute path shown
    assert re.search(r"cases.csv:4:5: prompts_file '.*empty.txt' holds no prompt", text)
    assert re.search(r"cases.csv:5:5: prompts_file '.*missing.txt': no such file", text)
    assert "cases.csv:5:3: model: missing value" in text
    assert "min_new_tokens (40) must not exceed max_new_tokens (32)" in text


def test_missing_extra_is_an_input_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(hf, "_extra_installed", lambda: False)
    (tmp_path / "cases.csv").write_text("case_id,backend,model,prompt\na,hf,m,hi\n")
    with pytest.raises(InputError) as e:
        read_cases(tmp_path / "cases.csv")
    assert e.value.exit_code == 4
    assert str(e.value) == (
        f"{tmp_path / 'cases.csv'}:2:2: backend 'hf' needs the hf extra: pip install "
        "'doerunner[hf]' (install torch first: pip install torch==2.13.0)")


@pytest.mark.parametrize("baseline", ["off", "40"])
def test_energy_per_token_under_simulated_nvml(tmp_path, tiny_model, baseline) -> None:
    """energy / tokens_out: the raw energy without a baseline, the adjusted one with it."""
    lib_dir = nvmlsim.build()
    (tmp_path / "cases.csv").write_text(
        "case_id,backend,model,prompt,num_prompts,batch_size,max_new_tokens,min_new_tokens,"
        "device,warmup\n"
        f"e,hf,{tiny_model},Hello world,8,2,16,16,cpu,1\n")
    env = {**nvmlsim.sim_env(lib_dir, profiles=[nvmlsim.Profile([(0, 150.0)])],
                             t0=time.time()), **OFFLINE, "SRD_HOME": str(tmp_path / "home")}
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--baseline", baseline,
                cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    r = read_rows(tmp_path / "m.csv")["e"]
    assert int(r["tokens_out"]) == 8 * 16
    energy = "energy_raw_j" if baseline == "off" else "energy_adjusted_j"
    assert f(r, "energy_raw_j") > 0
    if baseline == "off":
        assert r["energy_adjusted_j"] == ""
    else:  # 150 W drawn, 40 W idle: the adjusted energy is about 110/150 of the raw (the
        # counter's quantisation on a window of ~0.2 s makes it "about")
        assert f(r, energy) == pytest.approx(f(r, "energy_raw_j") * 110 / 150, rel=0.05)
        assert f(r, energy) < f(r, "energy_raw_j")
    assert f(r, "energy_per_token_j") == pytest.approx(f(r, energy) / int(r["tokens_out"]),
                                                       abs=0.006)
    run = json.loads((tmp_path / "m_run" / "run.json").read_text())
    metrics = run["cases"][0]["runs"][0]["metrics"]
    assert metrics["energy_per_token_j"] == pytest.approx(
        metrics[energy] / metrics["tokens_out"], rel=1e-12)
    assert "gpu_mem_peak_mb" in r  # telemetry columns; the CPU worker has no torch.cuda peak


def hooked(**settings: str) -> dict[str, str]:
    """The environment for srd with the test hook (tests/data/oom_hook) on the worker's
    PYTHONPATH, set as ``settings`` say."""
    hook = REPO / "tests" / "data" / "oom_hook"
    return {**OFFLINE, **settings,
            "PYTHONPATH": os.pathsep.join([str(REPO), str(hook),
                                           os.environ.get("PYTHONPATH", "")])}


def test_out_of_memory_is_a_fail_and_the_sweep_goes_on(tmp_path, tiny_model) -> None:
    """CUDA out of memory, raised where CUDA raises it (inside ``generate``) by a test hook
    (tests/data/oom_hook) for batches of 4 or more: FAIL with the batch size, the worker
    stays up with its model loaded, the next case runs."""
    import torch

    (tmp_path / "cases.csv").write_text(
        "case_id,backend,model,prompt,num_prompts,batch_size,max_new_tokens,min_new_tokens,"
        "device,warmup\n"
        f"b2,hf,{tiny_model},Hello world,4,2,4,4,cpu,0\n"
        f"b4,hf,{tiny_model},Hello world,4,4,4,4,cpu,0\n"
        f"b4w,hf,{tiny_model},Hello world,4,4,4,4,cpu,1\n"
        f"b1,hf,{tiny_model},Hello world,4,1,4,4,cpu,0\n"
        f"gpu,hf,{tiny_model},Hello world,4,1,4,4,cuda:1,0\n")
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", cwd=tmp_path,
                env=hooked(SRD_TEST_OOM_AT="4"))
    assert p.returncode == 3, p.stderr
    rows = read_rows(tmp_path / "m.csv")
    assert {k: (r["status"], r["message"]) for k, r in rows.items()} == {
        "b2": ("OK", ""), "b4": ("FAIL", "CUDA out of memory (batch_size=4)"),
        "b4w": ("FAIL", "warm-up request 1: CUDA out of memory (batch_size=4)"),
        "b1": ("OK", ""),
        "gpu": ("FAIL", "device 'cuda:1': CUDA is not available (torch "
                        f"{torch.__version__}, 0 GPUs)")}
    assert rows["b1"]["ext_worker_pid"] == rows["b2"]["ext_worker_pid"]  # not respawned
    assert rows["b1"]["ext_model_loads"] == "1" and f(rows["b1"], "model_load_s") == 0.0


def test_a_cuda_error_ends_the_worker_and_the_next_case_gets_a_new_one(tmp_path,
                                                                    tiny_model) -> None:
    """A CUDA error other than out of memory (an illegal memory access, raised by the test
    hook where CUDA raises it) leaves CUDA unusable: the worker answers and exits, the case
    is FAIL with the error, and the next case runs in a new worker."""
    (tmp_path / "cases.csv").write_text(
        "case_id,backend,model,prompt,num_prompts,batch_size,max_new_tokens,min_new_tokens,"
        "device,warmup\n"
        f"b1,hf,{tiny_model},Hello world,2,1,4,4,cpu,0\n"
        f"b2,hf,{tiny_model},Hello world,2,2,4,4,cpu,0\n"
        f"after,hf,{tiny_model},Hello world,2,1,4,4,cpu,0\n")
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", cwd=tmp_path,
                env=hooked(SRD_TEST_CUDA_ERROR_AT="2"))
    assert p.returncode == 3, p.stderr
    rows = read_rows(tmp_path / "m.csv")
    assert (rows["b2"]["status"], rows["b2"]["message"]) == (
        "FAIL", "RuntimeError: CUDA error: an illegal memory access was encountered "
        "(simulated by the test hook) (the hf worker exited: CUDA is unusable after this "
        "error)")
    assert rows["after"]["status"] == "OK"
    assert rows["after"]["ext_worker_pid"] != rows["b1"]["ext_worker_pid"]
    assert rows["after"]["ext_model_loads"] == "1"
    log = (tmp_path / "m_run" / "logs" / "hf_worker.log").read_text()
    assert "exiting after a CUDA error: CUDA error: an illegal memory access" in log


def test_the_window_covers_generation_not_loading(tmp_path, tiny_model, lib_dir) -> None:
    """Worker start, model load and tokenising are prepared before the window opens: with
    no warm-up, the first measured execution's window is its generation, not the load."""
    (tmp_path / "cases.csv").write_text(
        "case_id,backend,model,prompt,num_prompts,batch_size,max_new_tokens,min_new_tokens,"
        "device,warmup\n"
        f"cold,hf,{tiny_model},Hello world,2,1,4,4,cpu,0\n")
    env = {**nvmlsim.sim_env(lib_dir, profiles=[nvmlsim.Profile([(0, 150.0)])]),
           **hooked(SRD_TEST_LOAD_DELAY_S="1.0"), "SRD_HOME": str(tmp_path / "home")}
    p = run_srd("run", "--cases", "cases.csv", "--out", "m.csv", "--baseline", "off",
                cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    r = read_rows(tmp_path / "m.csv")["cold"]
    run = json.loads((tmp_path / "m_run" / "run.json").read_text())
    window = run["cases"][0]["runs"][0]["telemetry"]["window_s"]
    assert f(r, "model_load_s") >= 1.0  # the hook's delay: loading took a second
    assert window < f(r, "generate_s") + 0.3
    # energy per token over the same interval as tokens_per_s
    # (both as written in metrics.csv, rounded to 2 decimals)
    assert f(r, "energy_per_token_j") == pytest.approx(
        f(r, "energy_raw_j") / int(r["tokens_out"]), abs=0.006)


def test_version_differences_are_bridged() -> None:
    """transformers' dtype keyword, torch's out-of-memory class and sticky CUDA errors, as
    the installed versions have them."""
    import torch
    import transformers
    from packaging.version import Version

    from doerunner.backends import hf_generate as g

    new = Version(transformers.__version__).release >= (4, 56)
    assert ("dtype" if new else "torch_dtype") == g.DTYPE_KWARG
    assert torch.cuda.OutOfMemoryError in g.OOM_ERRORS
    assert not g.is_fatal_cuda_error(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert g.is_fatal_cuda_error(RuntimeError("CUDA error: device-side assert triggered"))
    assert not g.is_fatal_cuda_error(RuntimeError("shape mismatch"))
    assert not g.is_fatal_cuda_error(ValueError("CUDA error: but not a runtime error"))
    assert g.device_uuid(torch.device("cpu")) is None


def test_device_outside_the_window_is_flagged() -> None:
    from doerunner.campaign.runner import device_elsewhere

    details = {"gpus": [{"uuid": "GPU-aaaa", "visible_as": "MIG-bbbb"}]}
    assert device_elsewhere("GPU-aaaa", details) is None
    assert device_elsewhere("MIG-bbbb", details) is None
    assert device_elsewhere(None, details) is None
    assert device_elsewhere("GPU-cccc", {"gpus": []}) is None
    assert device_elsewhere("GPU-cccc", details) == (
        "the work ran on GPU-cccc, but the window measured GPU-aaaa: its energy and power are "
        "left empty")


def test_progress_inside_a_case(tmp_path, tiny_model) -> None:
    """Warm-up requests and batches reach the progress callback (the bar's sub-progress)."""
    (tmp_path / "cases.csv").write_text(
        "case_id,backend,model,prompt,num_prompts,batch_size,max_new_tokens,device,warmup\n"
        f"a,hf,{tiny_model},Hello world,5,2,4,cpu,2\n")
    case, = read_cases(tmp_path / "cases.csv")
    seen: list[tuple[str, str, int, int]] = []
    settings = RunnerSettings(logs_dir=tmp_path / "logs",
                              progress=lambda c, *a: seen.append((c.case_id, *a)))
    backend = hf.HfBackend()
    try:
        result = run_case(case, backend, settings)
    finally:
        backend.close()
    assert result.status == "OK", result.message
    assert seen == [("a", "warm-up request", 1, 2), ("a", "warm-up request", 2, 2),
                    ("a", "batch", 1, 3), ("a", "batch", 2, 3), ("a", "batch", 3, 3)]


@pytest.mark.slow
def test_worker_crash_is_a_fail_and_the_worker_respawns(tmp_path, tiny_model) -> None:
    """In-process: SIGKILL the worker in the middle of a generation."""
    (tmp_path / "cases.csv").write_text(
        "case_id,backend,model,prompt,max_new_tokens,min_new_tokens,device,warmup\n"
        f"long,hf,{tiny_model},hi,100000,100000,cpu,0\nshort,hf,{tiny_model},hi,4,4,cpu,0\n")
    long_case, short = read_cases(tmp_path / "cases.csv")
    backend = hf.HfBackend()
    ctx = ExecContext(timeout_s=60, stderr_path=tmp_path / "logs" / "x.stderr")
    got = []
    t = threading.Thread(target=lambda: got.append(backend.execute(long_case, ctx)))
    t.start()
    try:
        log = tmp_path / "logs" / "hf_worker.log"
        deadline = time.monotonic() + 30
        while not (log.exists() and "loaded" in log.read_text()):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        assert backend.worker is not None
        first = backend.worker.pid
        os.kill(first, signal.SIGKILL)
        t.join(10)
        assert got[0].status == "FAIL"
        assert got[0].message.startswith("hf worker died (killed by SIGKILL); see ")
        ok = backend.execute(short, ctx)
        assert ok.status == "OK" and ok.metrics["ext_worker_pid"] != str(first)
    finally:
        backend.close()
