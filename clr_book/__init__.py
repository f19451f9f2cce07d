"""clr_book: the lab of the CLR book, beside the library it teaches.

``clr_lib`` is what users import (schedules, torch adapters, the range test, plots, the explorer);
``clr_book`` holds what only the book needs: the toy problems of chapters 1-4
(:mod:`clr_book.toy_problems`), CIFAR-10 data, models and the training loop (:mod:`clr_book.cifar`),
resumable checkpoints (:mod:`clr_book.checkpoint`) and the experiment runners behind chapters 5-7
(:mod:`clr_book.experiments`). It imports clr_lib; clr_lib never imports it.
"""
