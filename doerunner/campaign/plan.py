"""The execution plan: how the cases of a run are run, decided once.

``make_plan`` resolves the options, the cases, the backends' declared capabilities and the
GPUs found into a frozen ``ExecutionPlan``: which executor, how many slots (cases at once),
which GPUs each slot owns (by UUID), what every execution of a slot finds in its environment
(``CUDA_VISIBLE_DEVICES``), which GPUs its measurement windows cover, and the telemetry mode
in force. ``srd run --dry-run`` prints it, run.json records it, and nothing downstream
decides any of this again: executors run the slots, the runner measures the slot's GPUs.

The rules:

* one rule for GPUs: the GPUs a slot owns are given to its cases (``CUDA_VISIBLE_DEVICES``
  = their UUIDs, which name the same GPUs whatever CUDA's ordering, or the MIG instance the
  user named) and exactly those are measured. A case never runs on a GPU srd does not
  measure, nor is it charged for one it cannot use.
* one case at a time (the default): one slot; with telemetry it owns every GPU of the
  run (``--gpus``, else every visible GPU).
* ``--per-gpu``: one slot per GPU; each case gets its slot's GPU and is measured on it
  alone. It needs telemetry (no GPU found is an error).
* ``--jobs N`` (and a Dask LocalCluster of N > 1 workers): N slots side by side on shared
  GPUs. A window would measure its neighbours' energy too, so telemetry is off, and cases
  of a backend that uses a GPU are refused — unless ``--share-gpus`` accepts that (then
  every slot measures every GPU, and a warning says the energy is not comparable).
* a remote executor (``--executor dask``): the workers measure their own GPUs; this process
  measures nothing. Cases of a backend that uses a GPU, and every case with ``--telemetry
  on``, ask for the ``GPU`` resource. Workers started on this machine (a LocalCluster of
  N > 1) share its GPUs: the ``--jobs`` rule applies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from doerunner.backends import BACKENDS
from doerunner.errors import InputError
from doerunner.inputs.case import Case

CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"


@dataclass(frozen=True, slots=True)
class GpuRef:
    """A GPU of the run: ``position`` among the GPUs opened for it (what measurement windows
    name), its NVML ``index``, ``uuid`` and ``name``; ``token``: how ``CUDA_VISIBLE_DEVICES``
    names it for a case (its UUID, or the MIG instance the user named); ``shared``: the case
    gets one MIG instance, so the GPU's energy is shared with its other instances."""

    position: int
    index: int
    uuid: str
    name: str
    token: str = ""
    shared: bool = False

    @property
    def visible_as(self) -> str:
        return self.token or self.uuid


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one case at a time runs. ``gpus``: the GPUs the slot owns (its cases get them
    and its windows measure them; empty without telemetry); ``env``: what every execution
    of the slot gets in its environment; ``measured``: the positions its windows cover
    (None: no window)."""

    number: int
    gpus: tuple[GpuRef, ...] = ()
    env: tuple[tuple[str, str], ...] = ()

    @property
    def measured(self) -> list[int] | None:
        return [g.position for g in self.gpus] if self.gpus else None

    @property
    def environment(self) -> dict[str, str]:
        return dict(self.env)

    def to_json(self) -> dict[str, Any]:
        return {"slot": self.number, "gpus": [g.uuid for g in self.gpus],
                "env": self.environment}


@dataclass(frozen=True, slots=True)
class ExecutionPlan:
    """How a run's cases are run (see the module docstring).

    ``executor``: the executor's registry name; ``mode``: ``serial``, ``parallel``,
    ``per-gpu`` or ``remote``; ``slots``: the local slots (a remote executor's workers are
    its slots: ``workers`` is how many srd starts on this machine, None when they run
    elsewhere, at ``scheduler``); ``telemetry``: the mode in force where the cases run (``on``,
    ``auto`` or ``off``); ``active``: whether this process measures; ``gpus``: the GPUs
    opened for the run; ``unavailable``: why none could be read (auto mode);
    ``gpu_backends``: backends whose cases ask Dask for a GPU; ``gpu_tasks``: whether any
    case does (the LocalCluster's workers then declare the resource); ``notes``: warnings to
    show at the start of the run."""

    executor: str
    mode: str
    slots: tuple[Slot, ...]
    telemetry: str
    active: bool = False
    gpus: tuple[GpuRef, ...] = ()
    unavailable: str | None = None
    workers: int | None = None
    scheduler: str | None = None
    gpu_backends: frozenset[str] = frozenset()
    gpu_tasks: bool = False
    notes: tuple[str, ...] = ()

    def asks_gpu(self, case: Case) -> bool:
        """Whether the case's Dask task asks for the ``GPU`` resource."""
        return self.telemetry == "on" or case.backend in self.gpu_backends

    def describe(self) -> Iterator[str]:
        """The plan as ``#`` lines (``srd run --dry-run``)."""
        where = {"serial": "one case at a time", "parallel": f"{len(self.slots)} cases at once",
                 "per-gpu": f"one case per GPU, {len(self.slots)} at once",
                 "remote": f"{self.workers} worker(s) started on this machine"
                           if self.workers is not None else f"the workers of {self.scheduler}"
                 }[self.mode]
        yield f"# executor: {self.executor} ({where})"
        if self.telemetry == "off":
            yield "# GPU telemetry: off"
        elif self.unavailable:
            yield f"# GPU telemetry: off ({self.unavailable})"
        elif self.mode == "remote":
            yield f"# GPU telemetry: {self.telemetry}, measured by each worker on its GPUs"
        for slot in self.slots:
            if slot.gpus or slot.env:
                gpus = ", ".join(f"GPU {g.index} {g.name} {g.uuid}" for g in slot.gpus)
                env = " ".join(f"{k}={v}" for k, v in slot.env)
                yield (f"# slot {slot.number}: measures {gpus or 'nothing'}"
                       + (f"; environment {env}" if env else ""))
        for note in self.notes:
            yield f"# note: {note}"

    def to_json(self) -> dict[str, Any]:
        """As run.json records it."""
        return {"executor": self.executor, "mode": self.mode, "telemetry": self.telemetry,
                "active": self.active, "unavailable": self.unavailable,
                "gpus": [{"position": g.position, "index": g.index, "uuid": g.uuid,
                          "name": g.name, "visible_as": g.visible_as, "shared": g.shared}
                         for g in self.gpus],
                "slots": [s.to_json() for s in self.slots], "workers": self.workers,
                "scheduler": self.scheduler, "gpu_backends": sorted(self.gpu_backends),
                "gpu_tasks": self.gpu_tasks,
                "notes": list(self.notes)}


# What make_plan is told of the GPUs: (refs of the GPUs opened, why none could be read).
GpuFinder = Callable[[str], tuple[Sequence[GpuRef], str | None]]


@dataclass(frozen=True, slots=True)
class Draft:
    """What the options and the cases decide before any GPU is looked at: the executor, the
    mode, the local slots wanted, the telemetry mode in force, the notes. Every combination
    that cannot run is refused here (``draft_plan``), before any output is touched."""

    executor: str
    mode: str
    slots: int
    telemetry: str
    workers: int | None = None
    scheduler: str | None = None
    gpu_backends: frozenset[str] = frozenset()
    gpu_tasks: bool = False
    notes: tuple[str, ...] = ()


def draft_plan(options: Any, cases: Sequence[Case], executor: Any) -> Draft:
    """The draft of a run with ``options`` (``RunOptions``) over ``cases`` on ``executor``
    (the class ``--executor`` names). Raises ``InputError`` for a combination that cannot
    run (hf cases side by side, ``--telemetry on`` with ``--jobs``, ``--per-gpu`` without
    telemetry)."""
    par, mode = options.parallel, options.telemetry.mode
    gpu_backends = frozenset(n for n, b in BACKENDS.items() if b.USES_GPU)
    notes: list[str] = []
    if executor.REMOTE:
        workers = executor.local_workers(par)
        if workers is not None and workers > 1:
            mode = _side_by_side(options, cases, gpu_backends, notes,
                                 f"--executor {par.executor}",
                                 f"the {workers} workers of a LocalCluster",
                                 "use --per-gpu with the local executor, or a cluster with "
                                 "one worker per GPU", "use --per-gpu with the local executor")
        gpu_tasks = any(mode == "on" or c.backend in gpu_backends for c in cases)
        return Draft(par.executor, "remote", 0, mode, workers, par.scheduler, gpu_backends,
                     gpu_tasks, tuple(notes))
    if par.per_gpu:
        if mode == "off":
            raise InputError("--per-gpu needs GPU telemetry: drop --telemetry off")
        # No GPU found is then an error, not a silent serial run.
        return Draft(par.executor, "per-gpu", 0, "on", gpu_backends=gpu_backends)
    if par.jobs > 1:
        mode = _side_by_side(options, cases, gpu_backends, notes, f"--jobs {par.jobs}",
                             f"{par.jobs} cases",
                             "use --per-gpu to give each case a GPU of its own, or --jobs 1",
                             "use --per-gpu, --share-gpus or --jobs 1")
    # No more slots than cases: a slot is a thread and a backend instance.
    slots = max(1, min(par.jobs, len(cases)))
    return Draft(par.executor, "parallel" if slots > 1 else "serial", slots, mode,
                 gpu_backends=gpu_backends, notes=tuple(notes))


def make_plan(draft: Draft, find_gpus: GpuFinder) -> ExecutionPlan:
    """The plan: the draft with the GPUs ``find_gpus(mode)`` opens for its telemetry mode
    (not called for ``off``, nor for a remote executor, whose workers measure). Raises what
    ``find_gpus`` raises (``TelemetryError`` in ``on`` mode without a GPU)."""
    common = {"workers": draft.workers, "scheduler": draft.scheduler,
              "gpu_backends": draft.gpu_backends, "gpu_tasks": draft.gpu_tasks,
              "notes": draft.notes}
    if draft.mode == "remote":
        return ExecutionPlan(draft.executor, "remote", (), draft.telemetry, **common)
    gpus: Sequence[GpuRef] = ()
    unavailable = None
    if draft.telemetry != "off":
        gpus, unavailable = find_gpus(draft.telemetry)
    if draft.mode == "per-gpu":
        slots = tuple(_owning(i, (g,)) for i, g in enumerate(gpus))
    else:
        slots = tuple(_owning(i, tuple(gpus)) for i in range(draft.slots))
    shared = [g for g in gpus if g.shared]
    if shared:
        common["notes"] = (*draft.notes, *(
            f"GPU {g.index} is measured for MIG instance {g.token}: its energy and power "
            "include the GPU's other instances" for g in shared))
    return ExecutionPlan(draft.executor, draft.mode, slots, draft.telemetry, bool(gpus),
                         tuple(gpus), unavailable, **common)


def _owning(number: int, gpus: tuple[GpuRef, ...]) -> Slot:
    """A slot that owns ``gpus``: its cases are given exactly those (none: the environment
    is left as it is)."""
    if not gpus:
        return Slot(number)
    return Slot(number, gpus, ((CUDA_VISIBLE_DEVICES, ",".join(g.visible_as for g in gpus)),))


def _side_by_side(options: Any, cases: Sequence[Case], gpu_backends: frozenset[str],
                  notes: list[str], what: str, who: str, gpu_hint: str,
                  telemetry_hint: str) -> str:
    """The telemetry mode for cases that run side by side on shared GPUs: refuses cases of
    a GPU backend and ``--telemetry on``; ``off``, unless ``--share-gpus`` accepts sharing
    (then a note says so)."""
    gpu_cases = next((c for c in cases if c.backend in gpu_backends), None)
    share = options.parallel.share_gpus
    if gpu_cases is not None and not share:
        raise InputError(f"{what}: {gpu_cases.backend} cases (like {gpu_cases.case_id!r}) use "
                         f"a GPU; {gpu_hint}")
    if share:
        notes.append(f"--share-gpus: {who} share the GPUs; per-case GPU energy and power "
                     "include their neighbours' and are not comparable")
        return options.telemetry.mode
    if options.telemetry.mode == "on":
        raise InputError(f"{what} with --telemetry on: {who} side by side would share the "
                         f"GPUs' energy; {telemetry_hint}")
    return "off"
