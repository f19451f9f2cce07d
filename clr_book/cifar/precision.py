"""Precision and compilation options of the training loops, resolved once from their spellings.

>>> resolve_amp_dtype("bf16")
torch.bfloat16
>>> autocast_dtype_for("auto", "cpu") is None
True
>>> resolve_compile(True)
'default'
"""

from __future__ import annotations

import torch

__all__ = ["COMPILE_MODES", "autocast_dtype_for", "dtype_name", "resolve_amp_dtype", "resolve_compile"]

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
"""The ``torch.compile`` modes the loops accept."""

_AMP_ALIASES = {"none": None, "fp32": None, "float32": None, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
                "fp16": torch.float16, "float16": torch.float16, "half": torch.float16}


def resolve_amp_dtype(amp_dtype: torch.dtype | str | None) -> torch.dtype | None:
    """``None``/``"none"`` -> None; ``"bf16"``/``"bfloat16"``/``torch.bfloat16`` and the fp16 spellings -> the dtype.

    Raises:
        ValueError: anything else (naming ``amp_dtype``).
    """
    if amp_dtype is None or amp_dtype in (torch.bfloat16, torch.float16):
        return amp_dtype
    if isinstance(amp_dtype, str) and amp_dtype.lower() in _AMP_ALIASES:
        return _AMP_ALIASES[amp_dtype.lower()]
    raise ValueError(f"amp_dtype must be None, 'bf16' or 'fp16' (or the torch dtypes), got {amp_dtype!r}")


def autocast_dtype_for(amp_dtype: torch.dtype | str | None, device: str | torch.device) -> torch.dtype | None:
    """The autocast dtype to train with on ``device``; ``"auto"`` picks by hardware.

    ``"auto"``: bfloat16 on a CUDA GPU that computes in bf16 natively (compute capability 8.0 or newer:
    A100, L4, H100, RTX 30xx and later); float16, with the loop's gradient scaler, on older CUDA GPUs
    (V100, and the T4 of Colab's free tier), where bf16 is emulated or unsupported; full precision (None)
    on the CPU. Any other value is :func:`resolve_amp_dtype`'s, whatever the device.

    Raises:
        ValueError: a value :func:`resolve_amp_dtype` rejects (other than ``"auto"``).
    """
    if not (isinstance(amp_dtype, str) and amp_dtype.lower() == "auto"):
        return resolve_amp_dtype(amp_dtype)
    device = torch.device(device)
    if device.type != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def dtype_name(dtype: torch.dtype | None) -> str | None:
    """``"bfloat16"`` for ``torch.bfloat16``; None for None (full precision)."""
    return None if dtype is None else str(dtype).removeprefix("torch.")


def resolve_compile(compile: bool | str | None) -> str | None:
    """False/None/``"none"`` -> None; True -> ``"default"``; a name from :data:`COMPILE_MODES` -> itself.

    Raises:
        ValueError: anything else (naming ``compile``).
    """
    if compile is False or compile is None or compile == "none":
        return None
    if compile is True:
        return "default"
    if isinstance(compile, str) and compile in COMPILE_MODES:
        return compile
    raise ValueError(f"compile must be a bool or one of {', '.join(map(repr, COMPILE_MODES))}, got {compile!r}")
