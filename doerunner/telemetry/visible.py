"""Which physical GPUs a CUDA program would see: ``CUDA_VISIBLE_DEVICES`` read as CUDA reads
it, and mapped to NVML's GPUs. Pure logic over a table of the GPUs NVML enumerated; the NVML
calls stay in ``gpu``.

CUDA and NVML number GPUs differently. NVML (and nvidia-smi) enumerate in their own order;
CUDA numbers the GPUs ``CUDA_DEVICE_ORDER`` says: ``FASTEST_FIRST`` (the default; a heuristic
that ranks faster models first, then PCI bus id) or ``PCI_BUS_ID`` (ascending PCI bus id). An
integer index in ``CUDA_VISIBLE_DEVICES`` therefore names a GPU by CUDA's order. srd maps it
by PCI bus id when ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` or when every GPU is the same model (the
two orders then agree), and refuses indices on a host of mixed models without it (it cannot
know CUDA's heuristic). UUIDs (``GPU-…``, prefixes allowed) name a GPU whatever the order.
MIG instances (``MIG-<uuid>``, or the pre-R470 ``MIG-GPU-<uuid>/<gi>/<ci>``) map to their
parent GPU, which is what NVML can measure; CUDA enumerates only one MIG instance, so the
list ends after the first. Parsing stops at the first entry that names no GPU, as CUDA's does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"
CUDA_DEVICE_ORDER = "CUDA_DEVICE_ORDER"


@dataclass(frozen=True, slots=True)
class Physical:
    """One GPU NVML enumerated: its NVML ``index``, and what could be read of it (``refused``
    says why it could not be opened, e.g. insufficient permissions)."""

    index: int
    uuid: str | None = None
    name: str | None = None
    pci_bus_id: str | None = None
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class Visible:
    """A GPU a case may be given: the NVML ``index`` of the physical GPU measured, ``token``
    (how ``CUDA_VISIBLE_DEVICES`` names it for the case: its UUID, or the MIG instance the
    user named) and ``mig`` (the case gets one MIG instance of that GPU: the GPU's energy is
    shared with its other instances)."""

    index: int
    token: str
    mig: bool = False


def cuda_order(gpus: list[Physical]) -> list[Physical]:
    """The GPUs in ``PCI_BUS_ID`` order (NVML's order where a bus id is missing)."""
    return sorted(gpus, key=lambda g: (g.pci_bus_id is None, (g.pci_bus_id or "").lower(),
                                       g.index))


def visible(cvd: str | None, gpus: list[Physical], order: str | None,
            mig_parent: Callable[[str], int | None]) -> tuple[list[Visible], list[str]]:
    """The GPUs a CUDA program would see under ``cvd`` (``None``: the variable is unset),
    in its order, and notes for the user. ``order`` is ``CUDA_DEVICE_ORDER``;
    ``mig_parent(uuid)`` the NVML index of a MIG instance's parent (None: unknown).

    Raises ``ValueError`` (with the message for the user) when indices cannot be mapped.
    """
    notes = [f"GPU {g.index} cannot be opened ({g.refused}): it is neither measured nor "
             "given to cases" for g in gpus if g.refused]
    usable = [g for g in gpus if not g.refused and g.uuid]
    if cvd is None:
        return [Visible(g.index, g.uuid or "") for g in usable], notes
    out: list[Visible] = []
    for raw in cvd.split(","):
        tok = raw.strip()
        if tok.upper().startswith("MIG-"):
            parent = _mig_parent(tok, usable, mig_parent)
            if parent is not None and all(v.index != parent for v in out):
                out.append(Visible(parent, tok, mig=True))
            break  # CUDA enumerates a single MIG instance
        if tok.isdigit():
            by_cuda = _by_index(cvd, gpus, order)
            i = int(tok)
            hit = by_cuda[i].index if i < len(by_cuda) else None
        else:
            hit = _by_uuid(tok, usable)
        uuid = next((g.uuid for g in usable if g.index == hit), None)
        if hit is None or uuid is None or any(v.index == hit for v in out):
            break
        out.append(Visible(hit, uuid))
    return out, notes


def _by_index(cvd: str, gpus: list[Physical], order: str | None) -> list[Physical]:
    """The GPUs as CUDA numbers them, for integer indices; ``ValueError`` when that order
    cannot be known."""
    refused = [g for g in gpus if g.refused]
    if refused:
        raise ValueError(
            f"{CUDA_VISIBLE_DEVICES}={cvd} names GPUs by index, but GPU {refused[0].index} "
            f"cannot be opened ({refused[0].refused}), so CUDA's numbering cannot be mapped: "
            "name the GPUs by UUID (nvidia-smi -L)")
    names = {g.name for g in gpus}
    if (order or "").strip().upper() != "PCI_BUS_ID" and len(names) > 1:
        raise ValueError(
            f"{CUDA_VISIBLE_DEVICES}={cvd} names GPUs by index, which CUDA numbers fastest "
            f"first on this host of mixed GPUs ({', '.join(sorted(n or '?' for n in names))})"
            f" unless {CUDA_DEVICE_ORDER}=PCI_BUS_ID: set {CUDA_DEVICE_ORDER}=PCI_BUS_ID or "
            "name the GPUs by UUID (nvidia-smi -L)")
    return cuda_order(gpus)


def _by_uuid(tok: str, usable: list[Physical]) -> int | None:
    if not tok.upper().startswith("GPU-") or len(tok) <= 4:
        return None
    t = tok.lower()
    hits = [g.index for g in usable if (g.uuid or "").lower().startswith(t)]
    return hits[0] if len(hits) == 1 else None


def _mig_parent(tok: str, usable: list[Physical],
                mig_parent: Callable[[str], int | None]) -> int | None:
    """The NVML index of the GPU a MIG instance belongs to."""
    rest = tok[4:]
    if rest.upper().startswith("GPU-"):  # MIG-GPU-<uuid>/<gi>/<ci> (drivers before R470)
        return _by_uuid(rest.split("/", 1)[0], usable)
    return mig_parent(tok)
