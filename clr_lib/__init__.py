"""clr_lib: cyclical learning rates, one-cycle and the LR range test.

The schedule core (:mod:`clr_lib.schedules`) needs numpy only: ``import clr_lib`` never imports
torch. The torch-backed names (``CyclicLR``, ``OneCycleLR``, ``ScheduleLR``, ``lr_range_test`` and
friends) are loaded on first use and need torch installed.
"""

from __future__ import annotations

import importlib
from typing import Any

from .schedules import (
    CYCLIC_MODES,
    WINDOW_SHAPES,
    Schedule,
    constant,
    cosine_warm_restarts,
    cyclic,
    cyclic_momentum,
    decay,
    exponential_decay,
    one_cycle,
    one_cycle_momentum,
    scaled,
    sequence,
    step_decay,
    warmup,
)

__version__ = "0.1.0"

# Public names that need torch, and the module that defines each; imported lazily (PEP 562).
_LAZY = {
    "CyclicLR": "torch_adapters",
    "OneCycleLR": "torch_adapters",
    "ScheduleLR": "torch_adapters",
    "lr_range_test": "range_test",
    "RangeTestResult": "range_test",
    "LRSuggestion": "range_test",
}

__all__ = [
    "CYCLIC_MODES",
    "WINDOW_SHAPES",
    "Schedule",
    "constant",
    "cosine_warm_restarts",
    "cyclic",
    "cyclic_momentum",
    "decay",
    "exponential_decay",
    "one_cycle",
    "one_cycle_momentum",
    "scaled",
    "sequence",
    "step_decay",
    "warmup",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
