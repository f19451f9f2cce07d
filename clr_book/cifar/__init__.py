"""CIFAR-10 for the book's GPU chapters: data (:mod:`.data`), networks (:mod:`.models`), the training
loop (:mod:`.train`, with its tensor-LR step in :mod:`.graphed`) and its precision options (:mod:`.precision`)."""
