"""An interactive schedule explorer: pick a policy, drag its parameters, see the LR and momentum.

Two layers, so that everything but the widgets is testable without a frontend:

* :func:`compute` is a pure function from an :class:`ExplorerSettings` to an :class:`ExplorerResult`:
  the LR and momentum schedules (built with :mod:`clr_lib.schedules`), their values over the run, a
  one-line summary (cycles, where the peaks fall, the LR at the end) and the code that rebuilds the
  same curves with ``clr_lib`` and with PyTorch's own schedulers. Invalid settings never raise: the
  result carries clr_lib's error message instead.
* :class:`ScheduleExplorer` is a thin ipywidgets front end over :func:`compute`: one control per
  settings field (``explorer.max_lr``, ``explorer.policy``, ...), re-rendered on every change.
  Display ``explorer.widget``.

The module imports numpy, matplotlib (the object-oriented API, never pyplot) and ipywidgets only,
never torch, and uses no threads, files or network, so it runs unchanged in the browser under
Pyodide (JupyterLite). The figure is rendered to PNG bytes shown in an ``ipywidgets.Image``;
:meth:`ScheduleExplorer.snapshot` shows the same picture as an ordinary output, which a static page
keeps.

Example::

    from clr_lib.explorer import ExplorerSettings, ScheduleExplorer, compute

    result = compute(ExplorerSettings(policy="exp_range", gamma=0.99994))
    print(result.summary)
    print(result.code)

    explorer = ScheduleExplorer(policy="one_cycle")   # in a notebook
    explorer.widget
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any, Optional

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter
from numpy.typing import ArrayLike

from . import schedules
from ._validation import MAX_ITERATIONS, require_flag, require_momentum_coefficient, require_positive_int
from .plotting import SCHEDULE_COLORS
from .schedules import Schedule

__all__ = [
    "MAX_TOTAL_ITERATIONS",
    "POLICIES",
    "ExplorerResult",
    "ExplorerSettings",
    "ScheduleExplorer",
    "compute",
    "peak_iterations",
    "render_png",
    "schedule_figure",
]

#: The policies the explorer offers: value -> label shown in the drop-down.
POLICIES: dict[str, str] = {
    "triangular": "triangular",
    "triangular2": "triangular2",
    "exp_range": "exp_range",
    "one_cycle": "one-cycle",
    "sgdr": "SGDR (warm restarts)",
    "decay": "decay (the paper's)",
}
_CYCLIC = ("triangular", "triangular2", "exp_range")
_SHAPES = ("triangle", "welch", "hann")

#: The longest run the explorer draws: it evaluates and plots every iteration, so a typo such as
#: ``total_iterations=10**12`` must be refused before numpy tries to allocate it. A million iterations
#: cover every run in the book and an ImageNet run of 90 epochs at batch 256 (450,360 iterations).
MAX_TOTAL_ITERATIONS = 1_000_000


@dataclass(frozen=True)
class ExplorerSettings:
    """Everything the explorer shows, as plain numbers; every count is in iterations.

    Which fields a policy uses:

    * ``triangular``, ``triangular2``, ``exp_range`` (:func:`clr_lib.cyclic`): ``base_lr``, ``max_lr``,
      ``step_size_up``, ``step_size_down``, ``shape``, and ``gamma`` for exp_range (per iteration);
    * ``one_cycle`` (:func:`clr_lib.one_cycle`): ``max_lr``, ``pct_start``, ``div_factor``,
      ``final_div_factor``, ``anneal_strategy``, ``three_phase``; the cycle spans ``total_iterations``;
    * ``sgdr`` (:func:`clr_lib.cosine_warm_restarts`): ``max_lr``, ``base_lr`` (its ``min_lr``),
      ``first_cycle_steps``, ``cycle_mult``;
    * ``decay`` (:func:`clr_lib.decay`): ``base_lr``, ``max_lr``, ``step_size_up`` (its ``step_size``).

    Momentum moves opposite to the LR between ``base_momentum`` and ``max_momentum`` when
    ``cycle_momentum`` is on and the policy has a momentum curve (the cyclic policies and one-cycle);
    otherwise it stays at ``max_momentum``. ``log_scale`` only changes the plot.

    :func:`compute` checks every field, also those the policy does not use: both momenta must lie in
    [0, 1); ``three_phase``, ``cycle_momentum`` and ``log_scale`` must be ``True`` or ``False`` (not a
    truthy string such as ``"False"``); the iteration counts must be whole numbers (not bools), with
    ``total_iterations`` from 1 to :data:`MAX_TOTAL_ITERATIONS`.
    """

    policy: str = "triangular"
    shape: str = "triangle"
    base_lr: float = 0.001
    max_lr: float = 0.006
    step_size_up: int = 2000
    step_size_down: int = 2000
    gamma: float = 0.99994
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal_strategy: str = "cos"
    three_phase: bool = False
    first_cycle_steps: int = 2000
    cycle_mult: int = 1
    cycle_momentum: bool = True
    base_momentum: float = 0.85
    max_momentum: float = 0.95
    total_iterations: int = 12_000
    log_scale: bool = False


@dataclass(frozen=True)
class ExplorerResult:
    """What :func:`compute` returns. On invalid settings ``error`` holds the message and the
    schedules, arrays and code are empty (``None``, or ``""`` for text)."""

    settings: ExplorerSettings
    lr_schedule: Optional[Schedule]
    momentum_schedule: Optional[Schedule]
    summary: str
    code: str
    clr_lib_code: str = ""
    torch_code: str = ""
    iterations: Optional[np.ndarray] = None
    lr: Optional[np.ndarray] = None
    momentum: Optional[np.ndarray] = None
    peaks: tuple[int, ...] = ()
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        """True when the settings were valid and the schedules exist."""
        return self.error is None


# --------------------------------------------------------------------------------------------------
# The pure part: settings -> schedules, summary and code
# --------------------------------------------------------------------------------------------------


def _momentum_is_cycled(settings: ExplorerSettings) -> bool:
    return settings.cycle_momentum and settings.policy in (*_CYCLIC, "one_cycle")


def _cycle_arguments(settings: ExplorerSettings) -> dict[str, Any]:
    """The arguments :func:`clr_lib.cyclic` and :func:`clr_lib.cyclic_momentum` share."""
    arguments: dict[str, Any] = {"step_size_up": settings.step_size_up}
    if settings.step_size_down != settings.step_size_up:
        arguments["step_size_down"] = settings.step_size_down
    arguments["mode"] = settings.policy
    if settings.policy == "exp_range":
        arguments["gamma"] = settings.gamma
    if settings.shape != "triangle":
        arguments["shape"] = settings.shape
    return arguments


def _one_cycle_phases(settings: ExplorerSettings) -> dict[str, Any]:
    return {
        "pct_start": settings.pct_start,
        "anneal_strategy": settings.anneal_strategy,
        "three_phase": settings.three_phase,
    }


def _check_settings(settings: ExplorerSettings) -> None:
    """The checks on fields that no clr_lib factory sees for every policy (ValueError, as the factories)."""
    require_positive_int("total_iterations", settings.total_iterations, maximum=MAX_TOTAL_ITERATIONS)
    for name in ("step_size_up", "step_size_down", "first_cycle_steps", "cycle_mult"):
        require_positive_int(name, getattr(settings, name), maximum=MAX_ITERATIONS)
    for name in ("base_momentum", "max_momentum"):
        require_momentum_coefficient(name, getattr(settings, name))
    for name in ("three_phase", "cycle_momentum", "log_scale"):
        require_flag(name, getattr(settings, name))


def _schedule_calls(settings: ExplorerSettings) -> tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]]]:
    """The clr_lib factory calls, as (function name, keyword arguments), for the LR and the momentum."""
    policy = settings.policy
    if policy in _CYCLIC:
        if settings.shape not in _SHAPES:
            raise ValueError(f"shape must be one of {', '.join(map(repr, _SHAPES))}, got {settings.shape!r}")
        lr = ("cyclic", {"base_lr": settings.base_lr, "max_lr": settings.max_lr, **_cycle_arguments(settings)})
        momentum = ("cyclic_momentum", {
            "base_momentum": settings.base_momentum, "max_momentum": settings.max_momentum, **_cycle_arguments(settings),
        })
    elif policy == "one_cycle":
        lr = ("one_cycle", {
            "max_lr": settings.max_lr, "total_steps": settings.total_iterations, **_one_cycle_phases(settings),
            "div_factor": settings.div_factor, "final_div_factor": settings.final_div_factor,
        })
        momentum = ("one_cycle_momentum", {
            "total_steps": settings.total_iterations, "base_momentum": settings.base_momentum,
            "max_momentum": settings.max_momentum, **_one_cycle_phases(settings),
        })
    elif policy == "sgdr":
        lr = ("cosine_warm_restarts", {
            "max_lr": settings.max_lr, "first_cycle_steps": settings.first_cycle_steps,
            "cycle_mult": settings.cycle_mult, "min_lr": settings.base_lr,
        })
        momentum = None
    elif policy == "decay":
        lr = ("decay", {"base_lr": settings.base_lr, "max_lr": settings.max_lr, "step_size": settings.step_size_up})
        momentum = None
    else:
        raise ValueError(f"policy must be one of {', '.join(map(repr, POLICIES))}, got {policy!r}")
    if momentum is None or not settings.cycle_momentum:
        momentum = ("constant", {"lr": settings.max_momentum})
    return lr, momentum


def _source(value: Any) -> str:
    """Python source that evaluates to exactly ``value`` (floats by their shortest exact repr)."""
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return f"{value:_d}" if abs(value) >= 1000 else str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value + '"'
    raise TypeError(f"cannot write {value!r} as code")  # pragma: no cover - settings hold the types above


def _call_source(target: str, function: str, positional: list[str], arguments: dict[str, Any]) -> str:
    """``target = function(positional, key=value, ...)`` on one line, or one argument per line if long."""
    parts = [*positional, *(f"{key}={_source(value)}" for key, value in arguments.items())]
    one_line = f"{target} = {function}({', '.join(parts)})"
    if len(one_line) <= 88:
        return one_line
    return f"{target} = {function}(\n" + "".join(f"    {part},\n" for part in parts) + ")"


def _factory_source(target: str, call: tuple[str, dict[str, Any]]) -> str:
    function, arguments = call
    if function == "constant":  # constant(lr) also holds a fixed momentum: no "lr=" for a momentum
        return _call_source(target, "clr_lib.constant", [_source(arguments["lr"])], {})
    return _call_source(target, f"clr_lib.{function}", [], arguments)


def _clr_lib_code(settings: ExplorerSettings, lr_call, momentum_call) -> str:
    lines = [
        "import numpy as np",
        "",
        "import clr_lib",
        "",
        _factory_source("lr_schedule", lr_call),
        _factory_source("momentum_schedule", momentum_call),
        f"iterations = np.arange({_source(settings.total_iterations)})  # the run: iterations 0 to "
        f"{settings.total_iterations - 1:,}",
        "lr, momentum = lr_schedule(iterations), momentum_schedule(iterations)",
        "# To drive a torch optimizer: clr_lib.ScheduleLR(optimizer, lr_schedule, momentum_schedule)",
    ]
    return "\n".join(lines) + "\n"


def _torch_code(settings: ExplorerSettings) -> str:
    """PyTorch's own scheduler for the settings (clr_lib's drop-in CyclicLR for the Welch/Hann windows)."""
    policy = settings.policy
    cycled = _momentum_is_cycled(settings)
    momentum_arguments = (
        {"cycle_momentum": True, "base_momentum": settings.base_momentum, "max_momentum": settings.max_momentum}
        if cycled else {"cycle_momentum": False}
    )
    imports = ["import torch"]
    notes: list[str] = []
    optimizer_lr = settings.base_lr if policy in _CYCLIC else settings.max_lr
    if policy in _CYCLIC:
        arguments = {"base_lr": settings.base_lr, "max_lr": settings.max_lr, **_cycle_arguments(settings)}
        arguments.pop("shape", None)
        arguments.update(momentum_arguments)
        if settings.shape == "triangle":
            function = "torch.optim.lr_scheduler.CyclicLR"
        else:
            imports.append("import clr_lib")
            function = "clr_lib.CyclicLR"
            arguments["shape"] = settings.shape
            notes.append(f"# PyTorch's CyclicLR has no {settings.shape.capitalize()} window; clr_lib.CyclicLR is a "
                         "drop-in with a shape argument.")
        positional = ["optimizer"]
    elif policy == "one_cycle":
        function = "torch.optim.lr_scheduler.OneCycleLR"
        arguments = {
            "max_lr": settings.max_lr, "total_steps": settings.total_iterations, **_one_cycle_phases(settings),
            "div_factor": settings.div_factor, "final_div_factor": settings.final_div_factor, **momentum_arguments,
        }
        positional = ["optimizer"]
    elif policy == "sgdr":
        function = "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts"
        arguments = {"T_0": settings.first_cycle_steps, "T_mult": settings.cycle_mult, "eta_min": settings.base_lr}
        positional = ["optimizer"]
        notes.append("# Torch's scheduler starts from the optimizer's lr: that is max_lr.")
    else:  # decay: linear from max_lr to base_lr over step_size iterations, then constant
        function = "torch.optim.lr_scheduler.LinearLR"
        arguments = {"start_factor": 1.0, "total_iters": settings.step_size_up}
        positional = ["optimizer", f"end_factor={_source(settings.base_lr)} / {_source(settings.max_lr)}"]
        notes.append("# LinearLR scales the optimizer's lr (max_lr) from start_factor to end_factor.")
    lines = [
        *imports,
        "",
        "# model: your torch.nn.Module",
        f"optimizer = torch.optim.SGD(model.parameters(), lr={_source(optimizer_lr)}, "
        f"momentum={_source(settings.max_momentum)})",
        *notes,
        _call_source("scheduler", function, positional, arguments),
        f"# Training loop ({settings.total_iterations:,} iterations): call scheduler.step() after every "
        "optimizer.step(),",
        "# once per iteration (mini-batch), never once per epoch.",
    ]
    return "\n".join(lines) + "\n"


def peak_iterations(values: ArrayLike) -> np.ndarray:
    """The iterations where a schedule's values peak: each local maximum, counted once.

    ``values[i]`` is the value at iteration ``i`` (e.g. ``schedule(np.arange(n))``). Iteration 0 is a
    peak if the values fall after it (the decay policy, SGDR); the last iteration never is (the run
    just ends there). A flat top counts once, at its first iteration, if the values fall after it.
    """
    lr = np.asarray(values, dtype=np.float64)
    if lr.size < 2:
        return np.zeros(0, dtype=np.int64)
    rises_into = np.concatenate(([True], lr[1:] > lr[:-1]))  # iteration 0 has nothing before it
    falls_after = np.concatenate((lr[:-1] >= lr[1:], [False]))  # the last iteration is the end, not a peak
    strict = np.concatenate((lr[:-1] > lr[1:], [False]))
    candidates = np.flatnonzero(rises_into & falls_after)
    # a plateau at the top (equal neighbours) counts once, at its first iteration, if the LR falls after it
    keep = []
    for index in candidates:
        end = index
        while end < lr.size - 1 and lr[end + 1] == lr[index]:
            end += 1
        if end < lr.size - 1 and strict[end]:
            keep.append(index)
    return np.asarray(keep, dtype=np.int64)


def _iteration_list(values: np.ndarray, limit: int = 6) -> str:
    numbers = [f"{int(value):,}" for value in values]
    if len(numbers) > limit:
        numbers = [*numbers[: limit - 2], "...", numbers[-1]]
    if len(numbers) == 1:
        return numbers[0]
    return ", ".join(numbers[:-1]) + " and " + numbers[-1]


def _sgdr_period_starts(first: int, mult: int, total: int) -> list[int]:
    starts = [0]
    while starts[-1] < total:
        starts.append(starts[-1] + first * mult ** (len(starts) - 1))
    return starts


def _describe_cycles(settings: ExplorerSettings) -> str:
    total = settings.total_iterations
    policy = settings.policy
    if policy in _CYCLIC:
        length = settings.step_size_up + settings.step_size_down
        if total % length == 0:
            text = f"{total // length} cycle{'s' if total // length != 1 else ''} of {length:,} iterations"
        else:
            suggestion = max(1, round(total / length)) * length
            text = (f"{total / length:.2f} cycles of {length:,} iterations: the run stops mid-cycle (stop where a "
                    f"cycle ends, e.g. after {suggestion:,} iterations)")
        if policy == "triangular2":
            text += "; the amplitude halves every cycle"
        elif policy == "exp_range":
            if settings.gamma < 1:
                half_life = math.log(0.5) / math.log(settings.gamma)
                text += f"; the amplitude halves every {half_life:,.0f} iterations (gamma per iteration)"
            else:
                text += "; gamma = 1: no decay (the same as triangular)"
        return text
    if policy == "one_cycle":
        return f"1 cycle over all {total:,} iterations ({'three' if settings.three_phase else 'two'} phases)"
    if policy == "sgdr":
        starts = _sgdr_period_starts(settings.first_cycle_steps, settings.cycle_mult, total)
        periods = len(starts) - 1
        lengths = [end - start for start, end in zip(starts, starts[1:])]
        if settings.cycle_mult == 1:
            text = f"{total / lengths[0]:.2f}".rstrip("0").rstrip(".") + f" restart periods of {lengths[0]:,} iterations"
        else:
            text = f"{periods} restart periods ({_iteration_list(np.asarray(lengths))} iterations long)"
        if starts[-1] != total:
            text += f": the run stops inside period {periods} (it would end after {starts[-1]:,})"
        return text
    return f"no cycles: falls from max_lr to base_lr over {settings.step_size_up:,} iterations, then holds"


def _summary(settings: ExplorerSettings, lr: np.ndarray, momentum: np.ndarray, peaks: np.ndarray) -> str:
    parts = [_describe_cycles(settings)]
    if peaks.size:
        parts.append(f"peak{'s' if peaks.size > 1 else ''} at iteration{'s' if peaks.size > 1 else ''} "
                     f"{_iteration_list(peaks)}")
    else:
        parts.append("no peaks")
    parts.append(f"LR at the end (iteration {lr.size - 1:,}): {lr[-1]:.4g}")
    if _momentum_is_cycled(settings):
        parts.append(f"momentum mirrors the LR, between {momentum.max():.4g} and {momentum.min():.4g}")
    else:
        parts.append(f"momentum fixed at {momentum[0]:g}")
    return " · ".join(parts)


def compute(settings: ExplorerSettings) -> ExplorerResult:
    """The explorer's whole computation, without widgets: settings -> schedules, values, summary, code.

    Never raises for bad settings: a ``ValueError`` from clr_lib's validation (e.g. ``base_lr >
    max_lr``, a one-cycle phase shorter than an iteration, a momentum of 1 or more, ``"False"`` for a
    boolean, ``total_iterations`` above :data:`MAX_TOTAL_ITERATIONS`) comes back as ``result.error``.
    """
    try:
        _check_settings(settings)
        lr_call, momentum_call = _schedule_calls(settings)
        lr_schedule = getattr(schedules, lr_call[0])(**lr_call[1])
        momentum_schedule = getattr(schedules, momentum_call[0])(**momentum_call[1])
        iterations = np.arange(settings.total_iterations)
        lr = lr_schedule(iterations)
        momentum = momentum_schedule(iterations)
    except ValueError as error:
        return ExplorerResult(settings=settings, lr_schedule=None, momentum_schedule=None, summary="", code="",
                              error=str(error))
    peaks = peak_iterations(lr)
    clr_lib_code = _clr_lib_code(settings, lr_call, momentum_call)
    torch_code = _torch_code(settings)
    code = ("# --- clr_lib (numpy only): the schedule as a function of the iteration ---\n" + clr_lib_code
            + "\n# --- PyTorch: the same schedule on an optimizer ---\n" + torch_code)
    return ExplorerResult(
        settings=settings, lr_schedule=lr_schedule, momentum_schedule=momentum_schedule,
        summary=_summary(settings, lr, momentum, peaks), code=code, clr_lib_code=clr_lib_code,
        torch_code=torch_code, iterations=iterations, lr=lr, momentum=momentum,
        peaks=tuple(int(peak) for peak in peaks),
    )


# --------------------------------------------------------------------------------------------------
# The picture (matplotlib's object-oriented API: no pyplot, no global state, works under Pyodide)
# --------------------------------------------------------------------------------------------------


def _title(settings: ExplorerSettings) -> str:
    policy = settings.policy
    if policy in _CYCLIC:
        window = "" if settings.shape == "triangle" else f", {settings.shape.capitalize()} window"
        return (f"{policy}{window}: {settings.base_lr:g} to {settings.max_lr:g}, "
                f"{settings.step_size_up:,} up / {settings.step_size_down:,} down")
    if policy == "one_cycle":
        return (f"one-cycle: {settings.max_lr / settings.div_factor:.3g} up to {settings.max_lr:g}, "
                f"peak at {settings.pct_start:.0%} of {settings.total_iterations:,} iterations")
    if policy == "sgdr":
        return (f"SGDR: {settings.max_lr:g} down to {settings.base_lr:g}, first period "
                f"{settings.first_cycle_steps:,}, x{settings.cycle_mult} per restart")
    return f"decay: {settings.max_lr:g} down to {settings.base_lr:g} over {settings.step_size_up:,} iterations"


def _lr_color(settings: ExplorerSettings) -> str:
    if settings.policy == "triangular" and settings.shape != "triangle":
        return SCHEDULE_COLORS[settings.shape]
    return SCHEDULE_COLORS[settings.policy]


def schedule_figure(result: ExplorerResult, *, log_scale: Optional[bool] = None,
                    figsize: tuple[float, float] = (9.0, 3.8)) -> Figure:
    """The explorer's picture as a matplotlib ``Figure`` (not registered with pyplot).

    LR on the left axis, momentum (dashed) on a twin right axis, the peaks marked; for invalid
    settings, the error message instead. ``log_scale`` defaults to ``result.settings.log_scale``.
    """
    settings = result.settings
    log_scale = settings.log_scale if log_scale is None else require_flag("log_scale", log_scale)
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    if not result.ok:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "No schedule for these settings:\n" + _wrap(result.error or "", 90), ha="center",
                va="center", fontsize=10, color="#B00020", transform=ax.transAxes)
        return fig
    color = _lr_color(settings)
    iterations, lr, momentum = result.iterations, result.lr, result.momentum
    lr_line = ax.plot(iterations, lr, color=color, linewidth=1.8, label="learning rate")
    peaks = np.asarray(result.peaks, dtype=np.int64)
    handles = list(lr_line)
    if peaks.size:
        handles += ax.plot(peaks, lr[peaks], "o", color=color, markersize=4, label="peaks")
    ax.set_xlabel("iteration (mini-batch updates)")
    ax.set_ylabel("learning rate")
    ax.set_xlim(0, max(int(iterations[-1]), 1))
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    momentum_ax = ax.twinx()
    momentum_label = "momentum" if _momentum_is_cycled(settings) else "momentum (fixed)"
    handles += momentum_ax.plot(iterations, momentum, color=SCHEDULE_COLORS["momentum"], linestyle="--",
                                linewidth=1.2, label=momentum_label)
    momentum_ax.set_ylabel("momentum")
    low, high = float(momentum.min()), float(momentum.max())
    spread = max(high - low, 0.05)
    momentum_ax.set_ylim(low - 0.1 * spread, high + 0.45 * spread)  # room for the legend above the curves
    if log_scale:
        ax.set_yscale("log")
        positive = lr[lr > 0]
        if positive.size:
            ax.set_ylim(positive.min() / 1.5, positive.max() * 6)
    else:
        top = float(lr.max())
        ax.set_ylim(0, top * 1.35 if top > 0 else 1)
    ax.set_title(_title(settings), fontsize=10)
    ax.legend(handles=handles, loc="upper right", ncol=len(handles), fontsize=8, frameon=False)
    return fig


def _wrap(text: str, width: int) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


def render_png(result: ExplorerResult, *, log_scale: Optional[bool] = None, dpi: int = 100) -> bytes:
    """:func:`schedule_figure` as PNG bytes (what the widget shows)."""
    buffer = io.BytesIO()
    schedule_figure(result, log_scale=log_scale).savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _code_block(code: str, title: str) -> str:
    """A <pre> block that selects itself whole on a click, so a reader can copy it at once."""
    return (
        f'<div style="margin-top:6px; font-size:85%; color:#555">{html.escape(title)}</div>'
        '<pre style="user-select:all; -webkit-user-select:all; background:#f6f8fa; border:1px solid #ddd; '
        'padding:6px 8px; margin:2px 0; font-size:12px; line-height:1.35; overflow-x:auto; white-space:pre">'
        f"{html.escape(code, quote=False)}</pre>"
    )


class _PNG:
    """A picture that Jupyter displays as an ordinary image output (image/png)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def _repr_png_(self) -> bytes:
        return self.data

    def __repr__(self) -> str:
        return f"<schedule explorer snapshot: PNG, {len(self.data):,} bytes>"


# --------------------------------------------------------------------------------------------------
# The widgets
# --------------------------------------------------------------------------------------------------

_STYLE = {"description_width": "130px"}


def _slider() -> dict[str, Any]:
    """Shared slider options; each control gets its own Layout (hiding one must not hide the others)."""
    return {"continuous_update": False, "style": _STYLE, "layout": widgets.Layout(width="360px")}


_LR_RANGE = (-6.0, 1.0)  # log10 of the LR slider ends: 1e-6 to 10
_LR_STEP = 0.05  # in decades: 20 positions per factor of ten


def _simplest_within(value: float, log_step: float) -> float:
    """The number with the fewest significant digits within half a log-slider step of ``value``.

    A log slider lands on ``10 ** (min + k * step)``, e.g. 0.00630957 for 0.006: the position stands for
    every number within half a step of it, and the simplest of them is what a reader means.
    """
    if value <= 0:
        return value
    for digits in range(1, 5):
        candidate = float(f"{value:.{digits}g}")
        if abs(math.log10(candidate / value)) <= log_step / 2 + 1e-12:
            return candidate
    return value


def _on_log_grid(value: float, low_exponent: float, log_step: float) -> bool:
    """Whether ``value`` sits on a position of a log slider (dragged there), not typed or set exactly."""
    if value <= 0:
        return False
    position = (math.log10(value) - low_exponent) / log_step
    return abs(position - round(position)) < 1e-6


class ScheduleExplorer:
    """Interactive explorer of LR and momentum schedules; display ``explorer.widget``.

    Args:
        settings: where to start (defaults: the paper's CIFAR-10 triangular schedule over three cycles).
        **changes: fields of :class:`ExplorerSettings` to override, e.g. ``ScheduleExplorer(policy="sgdr")``.

    Every field of :class:`ExplorerSettings` has a control with the same name (``explorer.policy``,
    ``explorer.base_lr``, ``explorer.step_size_up``, ...; all in ``explorer.controls``). Changing one
    updates :attr:`settings`, recomputes with :func:`compute`, and redraws ``explorer.image`` (the
    plot), ``explorer.summary`` (cycles, peaks, LR at the end), ``explorer.code`` (an HTML block with
    the clr_lib and PyTorch code for the current settings, to copy; the plain text is in
    ``explorer.result.code``) and ``explorer.message`` (clr_lib's error
    message for invalid settings, instead of a traceback). A log-slider position stands for the
    simplest number near it (0.006, not 0.00630957); values typed into a readout are kept exactly.
    """

    def __init__(self, settings: Optional[ExplorerSettings] = None, **changes: Any) -> None:
        self._settings = replace(settings or ExplorerSettings(), **changes)
        self._syncing = False
        self.result: ExplorerResult = compute(self._settings)
        self.png: bytes = b""
        self._build_controls()
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.message = widgets.HTML()
        self.summary = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.code = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.widget = widgets.VBox([
            self._row("policy", "shape", "log_scale"),
            self._row("base_lr", "max_lr", "total_iterations"),
            self._row("step_size_up", "step_size_down", "gamma"),
            self._row("pct_start", "div_factor", "final_div_factor", "anneal_strategy", "three_phase"),
            self._row("first_cycle_steps", "cycle_mult"),
            self._row("cycle_momentum", "base_momentum", "max_momentum"),
            self.message,
            self.image,
            self.summary,
            self.code,
        ])
        self._write_controls()
        for name, control in self.controls.items():
            control.observe(lambda change, name=name: self._on_change(name, change["new"]), names="value")
        self.render()

    # -- construction ------------------------------------------------------------------------------

    def _build_controls(self) -> None:
        log_lr = {"base": 10, "min": _LR_RANGE[0], "max": _LR_RANGE[1], "step": _LR_STEP, "readout_format": ".3g"}
        iterations = {"min": 10, "max": 10_000, "step": 10}
        self.policy = widgets.Dropdown(options=[(label, value) for value, label in POLICIES.items()],
                                       description="policy", style=_STYLE)
        self.shape = widgets.Dropdown(options=[("triangle", "triangle"), ("Welch (parabolic)", "welch"),
                                               ("Hann (sinusoidal)", "hann")], description="window shape",
                                      style={"description_width": "100px"})
        self.log_scale = widgets.Checkbox(description="log-scale LR axis", indent=False)
        self.base_lr = widgets.FloatLogSlider(description="base_lr", **log_lr, **_slider())
        self.max_lr = widgets.FloatLogSlider(description="max_lr", **log_lr, **_slider())
        self.total_iterations = widgets.IntSlider(description="total iterations", min=100, max=100_000, step=100,
                                                  **_slider())
        self.step_size_up = widgets.IntSlider(description="step_size_up", **iterations, **_slider())
        self.step_size_down = widgets.IntSlider(description="step_size_down", **iterations, **_slider())
        self.gamma = widgets.FloatSlider(description="gamma (per iteration)", min=0.999, max=1.0, step=0.00001,
                                         readout_format=".5f", **_slider())
        self.pct_start = widgets.FloatSlider(description="pct_start", min=0.05, max=0.95, step=0.05,
                                             readout_format=".2f", **_slider())
        self.div_factor = widgets.FloatSlider(description="div_factor", min=1.0, max=100.0, step=1.0,
                                              readout_format=".0f", **_slider())
        self.final_div_factor = widgets.FloatLogSlider(description="final_div_factor", base=10, min=0.0, max=5.0,
                                                       step=0.25, readout_format=".3g", **_slider())
        self.anneal_strategy = widgets.Dropdown(options=[("cosine", "cos"), ("linear", "linear")],
                                                description="anneal_strategy", style=_STYLE)
        self.three_phase = widgets.Checkbox(description="three phases", indent=False)
        self.first_cycle_steps = widgets.IntSlider(description="first_cycle_steps", min=100, max=20_000, step=100,
                                                   **_slider())
        self.cycle_mult = widgets.IntSlider(description="cycle_mult", min=1, max=4, step=1, **_slider())
        self.cycle_momentum = widgets.Checkbox(description="cycle momentum", indent=False)
        self.base_momentum = widgets.FloatSlider(description="base_momentum", min=0.5, max=0.99, step=0.01,
                                                 readout_format=".2f", **_slider())
        self.max_momentum = widgets.FloatSlider(description="max_momentum", min=0.5, max=0.99, step=0.01,
                                                readout_format=".2f", **_slider())
        self.controls: dict[str, widgets.ValueWidget] = {field.name: getattr(self, field.name)
                                                         for field in fields(ExplorerSettings)}

    def _row(self, *names: str) -> widgets.HBox:
        return widgets.HBox([self.controls[name] for name in names], layout=widgets.Layout(flex_flow="row wrap"))

    @contextmanager
    def _quietly(self) -> Iterator[None]:
        """Write control values without triggering a recompute for each."""
        self._syncing = True
        try:
            yield
        finally:
            self._syncing = False

    def _write_controls(self) -> None:
        with self._quietly():
            for name, control in self.controls.items():
                value = getattr(self._settings, name)
                options = getattr(control, "options", None)
                if options is not None and value not in [option[1] for option in options]:
                    continue  # an unknown policy or shape: compute() reports it
                control.value = value
        self._update_visibility()

    # -- reacting to the reader --------------------------------------------------------------------

    def _read(self, name: str, value: Any) -> Any:
        """A control's value as a settings field: log-slider positions snap to simple numbers,
        linear sliders lose the float noise of their steps."""
        control = self.controls[name]
        if isinstance(control, widgets.FloatLogSlider):
            if _on_log_grid(value, control.min, control.step):
                return _simplest_within(value, control.step)
            return float(value)
        if isinstance(control, widgets.FloatSlider):
            return round(float(value), 10)
        return value

    def _on_change(self, name: str, value: Any) -> None:
        if self._syncing:
            return
        field_value = self._read(name, value)
        if field_value != value:
            with self._quietly():
                self.controls[name].value = field_value
        self._settings = replace(self._settings, **{name: field_value})
        self._update_visibility()
        self.render()

    def _update_visibility(self) -> None:
        policy = self._settings.policy
        cyclic = policy in _CYCLIC
        cycled = _momentum_is_cycled(self._settings)
        shown = {
            "shape": cyclic,
            "base_lr": policy != "one_cycle",
            "step_size_up": cyclic or policy == "decay",
            "step_size_down": cyclic,
            "gamma": policy == "exp_range",
            "pct_start": policy == "one_cycle",
            "div_factor": policy == "one_cycle",
            "final_div_factor": policy == "one_cycle",
            "anneal_strategy": policy == "one_cycle",
            "three_phase": policy == "one_cycle",
            "first_cycle_steps": policy == "sgdr",
            "cycle_mult": policy == "sgdr",
            "cycle_momentum": cyclic or policy == "one_cycle",
            "base_momentum": cycled,
        }
        for name, control in self.controls.items():
            control.layout.display = None if shown.get(name, True) else "none"
        self.base_lr.description = "min_lr" if policy == "sgdr" else "base_lr"
        self.step_size_up.description = "step_size" if policy == "decay" else "step_size_up"
        self.max_momentum.description = "max_momentum" if cycled else "momentum"

    # -- public API --------------------------------------------------------------------------------

    @property
    def settings(self) -> ExplorerSettings:
        """The current settings; assign a new :class:`ExplorerSettings` to move every control at once."""
        return self._settings

    @settings.setter
    def settings(self, settings: ExplorerSettings) -> None:
        self._settings = settings
        self._write_controls()
        self.render()

    def render(self) -> None:
        """Recompute from :attr:`settings` and redraw the plot, summary, code and message."""
        self.result = compute(self._settings)
        self.png = render_png(self.result)
        self.image.value = self.png
        if self.result.ok:
            self.message.value = ""
            self.summary.value = f"<b>Summary:</b> {html.escape(self.result.summary)}"
            self.code.value = (
                "<b>Copy as code</b> (one click selects a whole block):"
                + _code_block(self.result.clr_lib_code, "clr_lib (numpy only)")
                + _code_block(self.result.torch_code, "PyTorch")
            )
        else:
            self.message.value = (
                '<div style="color:#B00020; font-weight:bold">Invalid settings: '
                f"{html.escape(self.result.error or '')}</div>"
            )
            self.summary.value = ""
            self.code.value = "<b>Copy as code:</b> no code until the settings are valid."

    def snapshot(self) -> _PNG:
        """The current picture as an ordinary image output (kept by static pages and exports)."""
        return _PNG(self.png)

    def _ipython_display_(self) -> None:  # pragma: no cover - needs a frontend
        from IPython.display import display

        display(self.widget)
