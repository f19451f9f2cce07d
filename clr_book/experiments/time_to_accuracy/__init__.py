"""Time to accuracy on ResNet-9: six schedules at an equal budget (chapter 7).

Run from the shell::

    python -m clr_book.experiments.time_to_accuracy --profile full --out clr_book/results/time_to_accuracy

Modules: :mod:`.config` (the recipe, the schedules at an equal budget, the profiles), :mod:`.run` (one
run, one results file, resumable), :mod:`.report` (summary over seeds, figures), ``__main__`` (the CLI).
"""
