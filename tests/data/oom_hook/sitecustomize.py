"""Test hook, active only when ``SRD_TEST_OOM_AT`` or ``SRD_TEST_CUDA_ERROR_AT`` is set and
this folder is on PYTHONPATH: transformers' ``generate`` raises, for a batch of that many
prompts or more, the out-of-memory error CUDA raises when a batch does not fit (the class
this torch has: ``torch.OutOfMemoryError`` from 2.4, ``torch.cuda.OutOfMemoryError`` before)
or the ``RuntimeError("CUDA error: ...")`` of a sticky CUDA error (an illegal memory access).
The hf worker's paths for both are then tested end to end on a machine without a GPU;
everything else runs for real. ``SRD_TEST_LOAD_DELAY_S`` makes every model load that much
slower (``from_pretrained``), so a test can tell loading apart from generating."""

from __future__ import annotations

import importlib.abc
import os
import sys
from typing import Any

_GENERATE = "transformers.generation.utils"
_LOAD = "transformers.modeling_utils"


def _patch(module: Any) -> None:
    oom_at = int(os.environ.get("SRD_TEST_OOM_AT") or 1 << 30)
    error_at = int(os.environ.get("SRD_TEST_CUDA_ERROR_AT") or 1 << 30)
    original = module.GenerationMixin.generate

    def generate(self: Any, *args: Any, **kwargs: Any) -> Any:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and ids.shape[0] >= error_at:
            raise RuntimeError("CUDA error: an illegal memory access was encountered "
                               "(simulated by the test hook)")
        if ids is not None and ids.shape[0] >= oom_at:
            import torch

            oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
            raise oom(
                "CUDA out of memory. Tried to allocate 20.00 GiB (simulated by the test hook)")
        return original(self, *args, **kwargs)

    module.GenerationMixin.generate = generate


def _patch_load(module: Any) -> None:
    delay = float(os.environ["SRD_TEST_LOAD_DELAY_S"])
    original = module.PreTrainedModel.from_pretrained.__func__

    @classmethod  # type: ignore[misc]
    def from_pretrained(cls: Any, *args: Any, **kwargs: Any) -> Any:
        import time

        time.sleep(delay)
        return original(cls, *args, **kwargs)

    module.PreTrainedModel.from_pretrained = from_pretrained


class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        patch = _PATCHES.get(name)
        if patch is None:
            return None
        for finder in sys.meta_path:
            spec = None if finder is self else finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        exec_module = spec.loader.exec_module

        def patched(module: Any) -> None:
            exec_module(module)
            patch(module)

        spec.loader.exec_module = patched
        return spec


_PATCHES: dict[str, Any] = {}
if os.environ.get("SRD_TEST_OOM_AT") or os.environ.get("SRD_TEST_CUDA_ERROR_AT"):
    _PATCHES[_GENERATE] = _patch
if os.environ.get("SRD_TEST_LOAD_DELAY_S"):
    _PATCHES[_LOAD] = _patch_load
if _PATCHES:
    sys.meta_path.insert(0, _Hook())
