"""Replicating Smith (2017), Table 1 on CIFAR-10 with the Caffe ``cifar10_full`` net.

Run from the shell::

    python -m clr_book.experiments.table1 --policy all --profile full --out clr_book/results/table1

or from Python with :func:`~clr_book.experiments.table1.run.run_policy` (after resolving the device,
profile and data once); read the files back with :func:`~clr_book.experiments.table1.report.load_results`.

Modules: :mod:`.config` (the five policies, the solver, the profiles), :mod:`.run` (one run, one
results file, resumable), :mod:`.report` (loading, the paper-vs-ours table, the figures), ``__main__``
(the command line, with ``--jobs`` to run policies in parallel processes).
"""
