"""Replicating Smith (2017), Table 1 on CIFAR-10 with the Caffe ``cifar10_full`` net.

Run from the shell::

    python -m clr_lib.experiments --policy all --profile auto --out results/
    python -m clr_lib.experiments --policy exp_range --profile full --data /path/to/cifar10.tar.gz --out results/
    python -m clr_lib.experiments --policy all --profile full --out book/results/table1 --jobs 5 --cuda-graph on

or from Python with :func:`run_policy`; read the files back with :func:`load_results` and build the
paper-vs-ours table with :func:`paper_comparison` and :func:`format_comparison`.

Modules: :mod:`.policies` (the five schedules and the paper's numbers), :mod:`.profiles` (full / quick /
smoke sizes), :mod:`.runner` (one run, one results file), :mod:`.graphed` (the optional tensor-LR /
CUDA-graph training step), :mod:`.results` (loading and the table), :mod:`.figures` (the Figure 1
analogue and the paper-vs-ours table), :mod:`.provenance` (device, versions, git state), :mod:`.cli`
(the command line, with ``--jobs`` to run policies in parallel processes).
"""

from __future__ import annotations

from .policies import DECAY_NOTE, PAPER_CITATION, PAPER_TABLE_1, POLICIES, Policy, get_policy, scaled_iterations
from .profiles import PROFILES, Profile, resolve_profile
from .results import format_comparison, iterations_to_reach, load_results, paper_comparison
from .runner import RESULT_SCHEMA, SOLVER, prepare_data, resolve_device, result_filename, run_policy

__all__ = [
    "DECAY_NOTE",
    "PAPER_CITATION",
    "PAPER_TABLE_1",
    "POLICIES",
    "PROFILES",
    "RESULT_SCHEMA",
    "SOLVER",
    "Policy",
    "Profile",
    "format_comparison",
    "get_policy",
    "iterations_to_reach",
    "load_results",
    "paper_comparison",
    "prepare_data",
    "resolve_device",
    "resolve_profile",
    "result_filename",
    "run_policy",
    "scaled_iterations",
]
