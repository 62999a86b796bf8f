"""Test hook, active only when ``SRD_TEST_OOM_AT`` or ``SRD_TEST_CUDA_ERROR_AT`` is set and
this folder is on PYTHONPATH: transformers' ``generate`` raises, for a batch of that many
prompts or more, the out-of-memory error CUDA raises when a batch does not fit (the class
this torch has: ``torch.OutOfMemoryError`` from 2.4, ``torch.cuda.OutOfMemoryError`` before)
or the ``RuntimeError("CUDA error: ...")`` of a sticky CUDA error (an illegal memory access).
The hf worker's paths for both are then tested end to end on a machine without a GPU;
everything else runs for real."""

from __future__ import annotations

import importlib.abc
import os
import sys
from typing import Any

_TARGET = "transformers.generation.utils"


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


class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _TARGET:
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
            _patch(module)

        spec.loader.exec_module = patched
        return spec


if os.environ.get("SRD_TEST_OOM_AT") or os.environ.get("SRD_TEST_CUDA_ERROR_AT"):
    sys.meta_path.insert(0, _Hook())
