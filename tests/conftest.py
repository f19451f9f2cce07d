"""Fixtures shared by several test files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clr_book.cifar.data import CIFAR10_CLASSES


@pytest.fixture(scope="session")
def tiny_cifar(tmp_path_factory) -> Path:
    """An image folder in the CIFAR-10 layout with just enough images for the smoke profile (50 / 20 per class)."""
    root = tmp_path_factory.mktemp("cifar")
    rng = np.random.default_rng(0)
    for split, count in (("train", 50), ("test", 20)):
        for label, name in enumerate(CIFAR10_CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                pixels = np.clip(rng.normal(25 * label, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
                buffer = io.BytesIO()
                Image.fromarray(pixels).save(buffer, format="PNG")
                (folder / f"{index:04d}.png").write_bytes(buffer.getvalue())
    return root
