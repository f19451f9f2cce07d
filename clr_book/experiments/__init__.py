"""The experiments behind the book's CIFAR-10 chapters, one subpackage each, on one shared base.

* :mod:`.range_test` (chapter 5): the LR range test on the Caffe net;
* :mod:`.table1` (chapter 6): Smith's Table 1 policies on the Caffe net;
* :mod:`.time_to_accuracy` (chapter 7): six schedules on ResNet-9 at equal budgets;
* :mod:`.schedule_comparison` (chapter 4, "Training with the schedules"): seven schedules on a narrow
  ResNet-9 at equal iterations, a single module.

Each has ``config`` (settings and profiles), ``run`` (one run, one results file), ``report`` (reading
results back, tables, figures) and ``__main__`` (``python -m clr_book.experiments.<name>``). They share
:mod:`.common` (device, profile, data and folder resolution; checkpoints; the command line),
:mod:`.records` (atomic results files) and :mod:`.provenance` (where and how a result was made).
"""
