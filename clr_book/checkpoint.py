"""Checkpoints that let a long run stop at any moment and resume where it was, bit for bit.

A :class:`Checkpoint` is one file per run (``<folder>/<name>.pt``) written with :func:`torch.save`:

* **when**: every ``every_seconds`` of wall time (default 300), when the loop asks at an iteration
  boundary, and at once when the process receives SIGINT or SIGTERM (:meth:`Checkpoint.guard`
  turns the signal into a save followed by :class:`RunInterrupted`);
* **what**: whatever the loop hands to :meth:`Checkpoint.save` (the training loop stores the model,
  optimizer and scheduler state, every random generator, the position in the data order, the curves
  so far and the elapsed times) plus the run's ``settings``;
* **how**: into a temporary file with a unique name in the same folder, then :func:`os.replace`, so a
  process killed while writing (even with SIGKILL) leaves the previous checkpoint whole;
* **resume**: :meth:`Checkpoint.load` returns the saved state, or None when there is none. A
  checkpoint made with other settings is refused with a ``ValueError`` that names each setting that
  differs, so a changed command never continues someone else's run.

The folder defaults to ``$CLR_CACHE/checkpoints`` (``~/.cache/clr_lib/checkpoints``); on Colab point
it at a mounted Google Drive folder so that a disconnect loses nothing.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from .cifar.data import default_cache_dir

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "RunInterrupted", "SweepCheckpoint", "default_checkpoint_dir",
           "probe_writable"]

CHECKPOINT_FORMAT = 1
"""Bumped when the layout of a saved state changes; an older file is refused, never misread."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM after saving its checkpoint.

    A subclass of ``KeyboardInterrupt``, so a notebook's interrupt button behaves as usual.

    Attributes:
        signal_number: the signal received.
        path: the checkpoint written.
        iteration: the iterations completed when it was written.
    """

    def __init__(self, signal_number: int, path: Path, iteration: int) -> None:
        name = signal.Signals(signal_number).name
        super().__init__(f"{name} received: stopped after iteration {iteration}; checkpoint saved to {path}. "
                         "Run the same command again to resume.")
        self.signal_number = signal_number
        self.path = path
        self.iteration = iteration


def default_checkpoint_dir() -> Path:
    """``checkpoints`` in the cache folder (:func:`clr_book.cifar.data.default_cache_dir`)."""
    return default_cache_dir() / "checkpoints"


def probe_writable(folder: str | os.PathLike[str], what: str) -> Path:
    """Create ``folder`` if needed and prove that a file can be written there; return it as a Path.

    Meant to run before any data is loaded or any iteration is trained, so that an unwritable results
    or checkpoint folder fails in a second, not after hours of training.

    Raises:
        ValueError: the folder cannot be created or written (naming ``what`` and the folder).
    """
    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-", delete=True):
            pass
    except OSError as error:
        raise ValueError(f"{what} {str(folder)!r} is not a writable folder: {error.strerror or error}") from error
    return path


def _plain(value: Any) -> Any:
    """Settings as comparable plain data (tuples as lists, numbers as Python numbers)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (bool, str, type(None))):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return repr(value)


def _differences(saved: Any, wanted: Any, prefix: str = "") -> list[str]:
    """``"name: checkpoint has A, this run has B"`` for every leaf that differs."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        lines = []
        for key in sorted(set(saved) | set(wanted)):
            name = f"{prefix}.{key}" if prefix else key
            if key not in saved:
                lines.append(f"{name}: not in the checkpoint, this run has {wanted[key]!r}")
            elif key not in wanted:
                lines.append(f"{name}: checkpoint has {saved[key]!r}, this run has none")
            else:
                lines.extend(_differences(saved[key], wanted[key], name))
        return lines
    return [] if saved == wanted else [f"{prefix or 'settings'}: checkpoint has {saved!r}, this run has {wanted!r}"]


class Checkpoint:
    """The checkpoint file of one run.

    Args:
        folder: where the file lives (created on the first save).
        name: the run's name, used as the file name (``<name>.pt``); letters, digits, ``-_.`` only.
        settings: everything that defines the run (experiment, policy, profile, seed, data source,
            device type, precision, ...). Saved with every checkpoint and compared on :meth:`load`.
        every_seconds: wall seconds between periodic saves, >= 0 (0: at every iteration boundary the
            loop offers, as the tests use).

    Raises:
        ValueError: a bad ``name`` or ``every_seconds``.
    """

    def __init__(self, folder: str | os.PathLike[str], name: str, settings: Mapping[str, Any], *,
                 every_seconds: float = 300.0) -> None:
        if not name or any(not (char.isalnum() or char in "-_.") for char in name):
            raise ValueError(f"name must be letters, digits, '-', '_' or '.', got {name!r}")
        if isinstance(every_seconds, bool) or not isinstance(every_seconds, (int, float)) or not (
                0 <= every_seconds < math.inf):
            raise ValueError(f"every_seconds must be a finite number of seconds >= 0, got {every_seconds!r}")
        self.folder = Path(folder).expanduser()
        self.name = name
        self.path = self.folder / f"{name}.pt"
        self.settings = _plain(settings)
        self.every_seconds = float(every_seconds)
        self._last_save = time.monotonic()
        self._signal: int | None = None

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.path)!r}, every_seconds={self.every_seconds})"

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when no checkpoint exists.

        Raises:
            ValueError: the file is not a checkpoint of this format, or it was made with other settings
                (every differing setting is named).
        """
        if not self.exists():
            return None
        try:
            saved = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception as error:  # noqa: BLE001 - any unreadable file gets one clear message
            raise ValueError(f"checkpoint {str(self.path)!r} cannot be read ({type(error).__name__}: {error}); "
                             "delete it to start the run afresh") from error
        if not isinstance(saved, dict) or saved.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint {str(self.path)!r} is not a clr_book checkpoint of format "
                             f"{CHECKPOINT_FORMAT}; delete it to start the run afresh")
        differences = _differences(saved["settings"], self.settings)
        if differences:
            raise ValueError(f"checkpoint {str(self.path)!r} was made with other settings ("
                             + "; ".join(differences) + "). Run with the same settings to resume, "
                             "or delete the file (or pass --fresh) to start afresh.")
        self._last_save = time.monotonic()
        return saved["state"]

    def due(self) -> bool:
        """True when a periodic save is due, or a stop signal arrived."""
        return self._signal is not None or time.monotonic() - self._last_save >= self.every_seconds

    def save(self, state: Mapping[str, Any]) -> Path:
        """Write ``state`` with the settings atomically (unique temporary file, then ``os.replace``).

        Raises:
            RunInterrupted: a stop signal had arrived (after the state is saved).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=f".{self.name}.", suffix=".partial")
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save({"format": CHECKPOINT_FORMAT, "settings": self.settings, "state": dict(state)}, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        self._last_save = time.monotonic()
        if self._signal is not None:
            raise RunInterrupted(self._signal, self.path, int(state.get("iteration", -1)))
        return self.path

    def delete(self) -> None:
        """Remove the checkpoint file (a fresh start); nothing happens when there is none."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    @contextlib.contextmanager
    def guard(self) -> Iterator[Checkpoint]:
        """While inside, SIGINT and SIGTERM only mark the checkpoint as due; the loop then saves and stops.

        Outside the main thread (where Python cannot install handlers) signals keep their handlers.
        The previous handlers are restored on exit.
        """
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def mark(signal_number: int, _frame: Any) -> None:
            self._signal = signal_number

        previous = {number: signal.signal(number, mark) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


class SweepCheckpoint:
    """A :class:`Checkpoint` as :func:`clr_lib.lr_range_test`'s ``checkpoint`` (load, due, save) that also
    keeps the sweep's seconds and the iterations at which it was resumed, across processes.

    What it saves is ``{"sweep": <the range test's state>, "seconds": ..., "resumed_at": [...]}``.
    """

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self.started = time.perf_counter()
        self.earlier_seconds = 0.0
        self.resumed_at: list[int] = []

    def load(self) -> dict[str, Any] | None:
        """The range test's saved state, or None; remembers the seconds and resume points saved with it."""
        state = self.checkpoint.load()
        if state is None:
            return None
        self.earlier_seconds = state["seconds"]
        self.resumed_at = [*state["resumed_at"], state["sweep"]["iteration"]]
        return state["sweep"]

    def due(self) -> bool:
        """Whether a periodic save is due (see :meth:`Checkpoint.due`)."""
        return self.checkpoint.due()

    def save(self, state: dict[str, Any]) -> Any:
        """Save the range test's ``state`` with the seconds so far and the resume points."""
        return self.checkpoint.save({"sweep": state, "seconds": self.seconds(), "resumed_at": self.resumed_at})

    def seconds(self) -> float:
        """Seconds of sweeping, over every process that worked on it."""
        return self.earlier_seconds + time.perf_counter() - self.started
