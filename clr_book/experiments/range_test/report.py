"""Range-test results files read back: the records of a folder, the result object of one, and two
small readings of the curves the chapter uses (band means of a linear sweep, the smoothing lag)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from clr_lib.range_test import RangeTestResult

from .run import RESULT_SCHEMA

__all__ = ["LRBands", "band_means", "load_range_tests", "result_from_record", "smoothing_lag"]


def result_from_record(record: dict[str, Any]) -> RangeTestResult:
    """The :class:`clr_lib.RangeTestResult` stored in a record (None in the curves reads back as NaN)."""
    return RangeTestResult.from_dict(dict(record["result"]))


def load_range_tests(
    folder: str | os.PathLike[str], *, profile: str | None = None, include_custom: bool = False
) -> list[dict[str, Any]]:
    """The range-test records in ``folder`` (``range-test-*.json`` of :data:`RESULT_SCHEMA`), sorted by file name.

    Args:
        folder: where the results files are; a missing folder gives an empty list.
        profile: keep only records of this profile name (e.g. ``"full"``); None keeps all.
        include_custom: also keep runs whose sweep was overridden (``profile.customised``).

    Raises:
        ValueError: a file that is not valid JSON or not of :data:`RESULT_SCHEMA` (naming the file).
    """
    records = []
    for path in sorted(Path(folder).glob("range-test-*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"results file {str(path)!r} is not valid JSON: {error}") from error
        if not isinstance(record, dict) or record.get("schema") != RESULT_SCHEMA:
            raise ValueError(f"results file {str(path)!r} must have schema {RESULT_SCHEMA!r}")
        if (profile is None or record["profile"]["name"] == profile) and (include_custom or not record["profile"]["customised"]):
            records.append({**record, "path": str(path)})
    return records


class LRBands(NamedTuple):
    """A curve averaged over consecutive learning-rate bands of equal width (see :func:`band_means`).

    Attributes:
        starts: lower edge of each band (learning rate).
        means: mean of the finite values in each band (NaN for a band without any).
        standard_errors: ``std / sqrt(count)`` of each band's values (NaN below two values).
        counts: number of finite values in each band.
    """

    starts: np.ndarray
    means: np.ndarray
    standard_errors: np.ndarray
    counts: np.ndarray


def band_means(lrs: ArrayLike, values: ArrayLike, width: float) -> LRBands:
    r"""Average a range-test curve over learning-rate bands ``[k w, (k + 1) w)``, ``k = 0, 1, ...``.

    Reading a linear sweep by eye asks where the curve *stops rising*; the differences of the band
    means answer it with numbers, e.g. the held-out accuracy gained per 0.001 of learning rate:
    ``numpy.diff(band_means(lrs, raw_accuracies, 0.001).means)``. Unlike a moving average, a band
    mean has no lag. Band :math:`k` holds the points with :math:`k \le \mathrm{lr} / w < k + 1`
    (up to a rounding of 1e-9 of a band, so that ``lr = 0.006`` falls in the band starting at
    0.006 whatever the float error of ``0.006 / 0.001``); there are
    :math:`\lceil \max(\mathrm{lr}) / w \rceil` bands (at least one), and a point on the upper edge
    of the last band joins that band. Non-finite values are left out.

    Args:
        lrs: learning rate of each point, all finite and >= 0 (a linear sweep's ``lrs``).
        values: the curve, as long as ``lrs`` (e.g. ``RangeTestResult.raw_accuracies``).
        width: the width of a band, in learning rate; finite and > 0.

    Returns:
        An :class:`LRBands`.

    Raises:
        ValueError: a bad ``width``, ``lrs`` and ``values`` of different lengths or not 1-D, or an
            ``lrs`` that is empty, negative or not finite.

    Example:
        >>> bands = band_means([0.0, 0.0005, 0.001, 0.0015, 0.002], [1, 3, 5, 7, 9], 0.001)
        >>> bands.starts.tolist(), bands.means.tolist(), bands.counts.tolist()
        ([0.0, 0.001], [2.0, 7.0], [2, 3])
    """
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width < math.inf:
        raise ValueError(f"width must be a finite learning-rate width > 0, got {width!r}")
    lrs, values = np.asarray(lrs, dtype=float), np.asarray(values, dtype=float)
    if lrs.ndim != 1 or values.shape != lrs.shape:
        raise ValueError(f"lrs and values must be 1-D and equally long, got shapes {lrs.shape} and {values.shape}")
    if lrs.size == 0 or not np.all(np.isfinite(lrs)) or np.any(lrs < 0):
        raise ValueError("lrs must hold at least one finite learning rate >= 0")
    position = lrs / width
    count = max(1, math.ceil(position.max() - 1e-9))
    band = np.minimum(np.floor(position + 1e-9).astype(int), count - 1)
    finite = np.isfinite(values)
    counts = np.bincount(band[finite], minlength=count)
    sums = np.bincount(band[finite], weights=values[finite], minlength=count)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
        squares = np.bincount(band[finite], weights=(values[finite] - means[band[finite]]) ** 2, minlength=count)
        standard_errors = np.where(counts > 1, np.sqrt(squares / np.maximum(counts - 1, 1) / counts), np.nan)
    return LRBands(np.arange(count) * width, means, standard_errors, counts)


def smoothing_lag(start_lr: float, end_lr: float, num_iter: int, mode: str, smooth_factor: float = 0.98) -> float:
    r"""How far back, in learning rate, the smoothed curves of a sweep look.

    The debiased moving average of :func:`clr_lib.lr_range_test` looks about
    :math:`\beta / (1 - \beta)` iterations back (49 at :math:`\beta = 0.98`). A linear sweep adds
    :math:`(\eta_1 - \eta_0) / (N - 1)` per iteration, so the lag is a *distance* in learning rate;
    an exponential sweep multiplies by :math:`r = (\eta_1 / \eta_0)^{1/(N-1)}` per iteration, so it
    is a *factor*, :math:`r^{\beta/(1-\beta)}`: the smoothed value plotted at :math:`\eta` mostly
    reflects points measured at rates down to :math:`\eta` divided by that factor.

    Args:
        start_lr, end_lr: the first and last learning rate of the sweep, ``0 < start_lr < end_lr``
            for ``"exp"`` (``0 <= start_lr < end_lr`` for ``"linear"``).
        num_iter: iterations of the sweep, a whole number >= 2.
        mode: ``"linear"`` or ``"exp"``.
        smooth_factor: :math:`\beta`, in ``[0, 1)``.

    Returns:
        ``"linear"``: the lag in learning rate, :math:`\frac{\beta}{1-\beta}\,\frac{\eta_1 - \eta_0}{N - 1}`;
        ``"exp"``: the lag as a factor, :math:`r^{\beta/(1-\beta)}` (1 means no lag).

    Raises:
        ValueError: any argument outside the ranges above, naming it.

    Example:
        >>> round(smoothing_lag(1e-5, 0.02, 4000, "linear"), 6)  # Smith's CIFAR-10 sweep
        0.000245
        >>> round(smoothing_lag(1e-5, 1.0, 1500, "exp"), 3)
        1.457
    """
    if mode not in ("linear", "exp"):
        raise ValueError(f"mode must be 'linear' or 'exp', got {mode!r}")
    if isinstance(num_iter, bool) or not isinstance(num_iter, int) or num_iter < 2:
        raise ValueError(f"num_iter must be a whole number of iterations >= 2, got {num_iter!r}")
    if not (isinstance(smooth_factor, (int, float)) and 0 <= smooth_factor < 1):
        raise ValueError(f"smooth_factor must be a number in [0, 1), got {smooth_factor!r}")
    lowest = 0.0 if mode == "linear" else math.nextafter(0.0, 1.0)
    if not (isinstance(start_lr, (int, float)) and isinstance(end_lr, (int, float))
            and lowest <= start_lr < end_lr < math.inf):
        relation = "0 <= start_lr < end_lr" if mode == "linear" else "0 < start_lr < end_lr"
        raise ValueError(f"start_lr and end_lr must be finite learning rates with {relation}, "
                         f"got start_lr={start_lr!r}, end_lr={end_lr!r}")
    lag = smooth_factor / (1 - smooth_factor)
    if mode == "linear":
        return lag * (end_lr - start_lr) / (num_iter - 1)
    return float((end_lr / start_lr) ** (lag / (num_iter - 1)))
