"""Time to accuracy on ResNet-9: six schedules at an equal budget (chapter 7).

Run from the shell::

    python -m clr_book.experiments.time_to_accuracy --profile full --out clr_book/results/time_to_accuracy

or, on a 2-core CPU, the ``cpu`` profile: first its LR range test, then the comparison built from it::

    python -m clr_book.experiments.time_to_accuracy --profile cpu --range-test-only --out clr_book/results/time_to_accuracy
    python -m clr_book.experiments.time_to_accuracy --profile cpu --out clr_book/results/time_to_accuracy

Modules: :mod:`.config` (the recipe, the schedules at an equal budget, the profiles, the target),
:mod:`.range_test` (the LR range test of the network that sets a profile's LRs), :mod:`.run` (one run,
one results file, resumable), :mod:`.report` (summary over seeds in iterations and epochs, figures),
``__main__`` (the CLI).
"""
