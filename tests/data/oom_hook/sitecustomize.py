"""Test hook, active only when ``SRD_TEST_OOM_AT`` is set and this folder is on PYTHONPATH:
transformers' ``generate`` raises ``torch.OutOfMemoryError`` for a batch of that many
prompts or more, as CUDA does when a batch does not fit. The hf worker's out-of-memory path
is then tested end to end on a machine without a GPU; everything else runs for real."""

from __future__ import annotations

import importlib.abc
import os
import sys
from typing import Any

_TARGET = "transformers.generation.utils"


def _patch(module: Any) -> None:
    at = int(os.environ["SRD_TEST_OOM_AT"])
    original = module.GenerationMixin.generate

    def generate(self: Any, *args: Any, **kwargs: Any) -> Any:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and ids.shape[0] >= at:
            import torch

            raise torch.OutOfMemoryError(
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


if os.environ.get("SRD_TEST_OOM_AT"):
    sys.meta_path.insert(0, _Hook())
