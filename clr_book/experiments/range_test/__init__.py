"""The LR range test on CIFAR-10 with the paper's Caffe net (chapter 5).

Run from the shell::

    python -m clr_book.experiments.range_test --profile full --mode both --out clr_book/results/range_test

Modules: :mod:`.config` (the paper's reading, the sweeps, the profiles), :mod:`.run` (one sweep, one
results file), :mod:`.report` (reading results files back), ``__main__`` (the command line).
"""
