"""The results files of the book's long runs, committed to the repository and shipped with the package.

One folder per experiment (``range_test``, ``table1``, ``time_to_accuracy``, ``schedule_comparison``),
each holding the JSON records its command writes (one file per run, with provenance). They live inside
the package so that every reader finds the same files: the book build and a notebook opened from a
clone read them from the checkout (an editable install), and on Colab, where the working folder is
``/content`` and holds no repository, ``pip install`` of the book's repository brings them along.

A long run writes into the folder with ``--out``, e.g. from the repository root::

    python -m clr_book.experiments.table1 --policy fixed --profile full --out clr_book/results/table1

>>> folder("table1").name
'table1'
>>> folder("table1").is_dir()
True
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["EXPERIMENTS", "folder"]

EXPERIMENTS = ("range_test", "schedule_comparison", "table1", "time_to_accuracy")
"""The experiments whose results files the package ships, one folder each."""


def folder(experiment: str) -> Path:
    """The folder of ``experiment``'s committed results files (it may hold none yet).

    Raises:
        ValueError: ``experiment`` is not one of :data:`EXPERIMENTS`.
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {', '.join(map(repr, EXPERIMENTS))}, got {experiment!r}")
    return Path(__file__).resolve().parent / experiment
