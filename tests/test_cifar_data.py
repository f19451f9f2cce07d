"""clr_book.cifar.data: finding, decoding and caching CIFAR-10, the stand-in, and device-resident batches."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clr_book.cifar import data as data_module
from clr_book.cifar.data import (
    CIFAR10,
    CIFAR10_CLASSES,
    Augmentation,
    DeviceBatches,
    Normalization,
    crop_with_offsets,
    flip_where,
    load_cifar10,
    make_synthetic_cifar10,
    random_augment,
    to_device,
)

# Written out of sorted order on purpose: labels must follow the SORTED class names.
TINY_CLASSES = ("dog", "airplane", "cat")
TRAIN_PER_CLASS, TEST_PER_CLASS = 4, 2
_REAL_TRY_DOWNLOAD = data_module._try_download  # the autouse fixture below replaces it in every test


def _pixel(class_name: str, index: int) -> tuple[int, int, int]:
    """A flat colour that identifies (class, image): exact in PNG, within a few levels in JPEG."""
    return (40 + 60 * sorted(TINY_CLASSES).index(class_name), 30 + 40 * index, 200)


def _encode(colour: tuple[int, int, int], fmt: str, size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _write_tree(root: Path, fmt: str = "PNG", suffix: str = ".png") -> Path:
    for split, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        for class_name in TINY_CLASSES:
            folder = root / split / class_name
            folder.mkdir(parents=True)
            for index in range(count):
                (folder / f"{index:04d}{suffix}").write_bytes(_encode(_pixel(class_name, index), fmt))
    (root / "train" / "README.txt").write_text("not an image, ignored")
    return root


def _write_tar(tar_path: Path, tree: Path, prefix: str = "") -> Path:
    with tarfile.open(tar_path, "w:gz") as archive:
        for path in sorted(tree.rglob("*")):
            archive.add(path, arcname=prefix + str(path.relative_to(tree)), recursive=False)
    return tar_path


def _write_pickles(folder: Path) -> Path:
    """A fake torchvision cifar-10-batches-py: 5 train batches of 2 images and a test batch of 3."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, count in [(f"data_batch_{i}", 2) for i in range(1, 6)] + [("test_batch", 3)]:
        rows = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 10, count))
        (folder / name).write_bytes(pickle.dumps({"data": rows, "labels": labels, "batch_label": name}))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list(CIFAR10_CLASSES)}))
    return folder


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No test sees the developer's CLR_CIFAR10, cache or network."""
    monkeypatch.delenv("CLR_CIFAR10", raising=False)
    monkeypatch.setenv("CLR_CACHE", str(tmp_path / "cache"))

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to download CIFAR-10")

    monkeypatch.setattr(data_module, "_try_download", no_network)


# ----------------------------------------------------------------------------------------------
# Layouts
# ----------------------------------------------------------------------------------------------


def test_image_folder_loads_with_sorted_class_order_and_exact_pixels(tmp_path):
    data = load_cifar10(_write_tree(tmp_path / "tree"), verbose=False)
    assert data.classes == ("airplane", "cat", "dog")
    assert data.train_images.shape == (12, 32, 32, 3) and data.train_images.dtype == np.uint8
    assert data.train_labels.dtype == np.int64 and data.test_images.shape == (6, 32, 32, 3)
    for image, label in zip(data.train_images, data.train_labels):
        class_name = data.classes[label]
        index = (image[0, 0, 1] - 30) // 40
        assert tuple(image[5, 7]) == _pixel(class_name, int(index))
    assert str(tmp_path / "tree") in data.source


def test_tar_gz_holds_the_same_images_as_the_folder(tmp_path):
    tree = _write_tree(tmp_path / "tree", fmt="JPEG", suffix=".jpg")
    from_folder = load_cifar10(tree, verbose=False)
    from_tar = load_cifar10(_write_tar(tmp_path / "tiny.tar.gz", tree), verbose=False)
    assert from_tar.classes == from_folder.classes
    np.testing.assert_array_equal(from_tar.train_labels, from_folder.train_labels)
    np.testing.assert_array_equal(from_tar.test_images, from_folder.test_images)
    expected = np.array([_pixel(from_tar.classes[y], i % TRAIN_PER_CLASS) for i, y in enumerate(from_tar.train_labels)])
    assert np.abs(from_tar.train_images[:, 16, 16].astype(int) - expected).max() <= 4  # JPEG, flat colours
    assert from_tar.source.endswith("tiny.tar.gz")


def test_tar_gz_with_a_top_level_folder(tmp_path):
    tar = _write_tar(tmp_path / "wrapped.tar.gz", _write_tree(tmp_path / "tree"), prefix="cifar10-jpeg/")
    data = load_cifar10(tar, verbose=False)
    assert data.classes == ("airplane", "cat", "dog") and len(data.train_labels) == 12


@pytest.mark.parametrize("point_at_parent", [False, True])
def test_torchvision_pickled_batches(tmp_path, point_at_parent):
    folder = _write_pickles(tmp_path / "root" / "cifar-10-batches-py")
    data = load_cifar10(folder.parent if point_at_parent else folder, verbose=False)
    assert data.classes == CIFAR10_CLASSES
    assert data.train_images.shape == (10, 32, 32, 3) and data.test_images.shape == (3, 32, 32, 3)
    first = pickle.loads((folder / "data_batch_1").read_bytes())
    np.testing.assert_array_equal(data.train_images[0], first["data"][0].reshape(3, 32, 32).transpose(1, 2, 0))
    assert list(data.train_labels[:2]) == list(first["labels"])


def test_a_folder_of_neither_layout_raises(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a CIFAR-10 source"):
        load_cifar10(tmp_path / "empty", verbose=False)


def test_an_image_that_is_not_32x32_raises(tmp_path):
    tree = _write_tree(tmp_path / "tree")
    (tree / "train" / "cat" / "big.png").write_bytes(_encode((1, 2, 3), "PNG", size=40))
    with pytest.raises(ValueError, match="expected 32x32"):
        load_cifar10(tree, verbose=False)


def test_worker_processes_decode_like_the_main_process(tmp_path, monkeypatch):
    blobs = [_encode((i, 2 * i, 3 * i), "PNG") for i in range(40)]
    names = [f"image{i}" for i in range(40)]
    in_process = data_module._decode_images(blobs, names)
    monkeypatch.setattr(data_module, "_PARALLEL_DECODE_MIN", 1)
    monkeypatch.setattr(data_module.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    np.testing.assert_array_equal(data_module._decode_images(blobs, names), in_process)
    assert tuple(in_process[7, 0, 0]) == (7, 14, 21)


# ----------------------------------------------------------------------------------------------
# Order of sources
# ----------------------------------------------------------------------------------------------


def test_explicit_argument_beats_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("CLR_CIFAR10", str(_write_pickles(tmp_path / "pickles")))
    data = load_cifar10(_write_tree(tmp_path / "tree"), verbose=False)
    assert data.classes == ("airplane", "cat", "dog")


def test_environment_variable_is_used_without_an_argument(tmp_path, monkeypatch):
    monkeypatch.setenv("CLR_CIFAR10", str(_write_tree(tmp_path / "tree")))
    assert load_cifar10(verbose=False).source == str((tmp_path / "tree").resolve())


def test_missing_explicit_location_raises_naming_the_parameter(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="location must be an existing"):
        load_cifar10(tmp_path / "nowhere", verbose=False)
    monkeypatch.setenv("CLR_CIFAR10", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="CLR_CIFAR10 must be an existing"):
        load_cifar10(verbose=False)


def test_download_comes_after_an_explicit_location(tmp_path, monkeypatch):
    pickles = _write_pickles(tmp_path / "downloaded" / "cifar-10-batches-py")
    monkeypatch.setattr(data_module, "_try_download", lambda root, verbose: pickles)
    data = load_cifar10(verbose=False)
    assert data.source.startswith("torchvision download") and len(data.train_labels) == 10
    assert load_cifar10(_write_tree(tmp_path / "tree"), verbose=False).classes == ("airplane", "cat", "dog")


def test_failed_download_falls_back_to_the_announced_stand_in(tmp_path, monkeypatch, capsys):
    import torchvision

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(data_module, "_try_download", _REAL_TRY_DOWNLOAD)
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    data = load_cifar10(synthetic_sizes=(30, 20))
    assert data.is_synthetic and data.source.startswith("synthetic stand-in")
    captured = capsys.readouterr()
    assert "SYNTHETIC STAND-IN" in captured.out and "download failed" in captured.out
    assert "SYNTHETIC" not in captured.err


def test_without_download_the_stand_in_comes_next(capsys):
    data = load_cifar10(download=False, synthetic_sizes=(20, 10), verbose=False)
    assert data.is_synthetic and len(data.train_labels) == 20
    assert "NOT CIFAR-10" in capsys.readouterr().out  # announced even with verbose=False


# ----------------------------------------------------------------------------------------------
# Cache
# ----------------------------------------------------------------------------------------------


def test_second_load_comes_from_the_cache_without_decoding(tmp_path, monkeypatch):
    tree = _write_tree(tmp_path / "tree")
    first = load_cifar10(tree, verbose=False)
    assert len(list((tmp_path / "cache").glob("cifar10-*.npz"))) == 1

    def must_not_decode(path):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(data_module, "_read_location", must_not_decode)
    second = load_cifar10(tree, verbose=False)
    np.testing.assert_array_equal(second.train_images, first.train_images)
    assert second.classes == first.classes and second.source == first.source


def test_cache_is_invalidated_when_the_source_changes(tmp_path):
    tar = _write_tar(tmp_path / "tiny.tar.gz", _write_tree(tmp_path / "tree"))
    before = load_cifar10(tar, verbose=False)
    (tmp_path / "tree" / "train" / "cat" / "0000.png").write_bytes(_encode((0, 0, 0), "PNG"))
    _write_tar(tar, tmp_path / "tree")
    stat = tar.stat()
    os.utime(tar, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a new mtime even on coarse clocks
    after = load_cifar10(tar, verbose=False)
    assert len(list((tmp_path / "cache").glob("cifar10-*.npz"))) == 2
    assert not np.array_equal(before.train_images, after.train_images)
    assert (after.train_images.reshape(len(after.train_images), -1).max(axis=1) == 0).sum() == 1


def test_explicit_cache_dir_argument(tmp_path):
    load_cifar10(_write_tree(tmp_path / "tree"), cache_dir=tmp_path / "elsewhere", verbose=False)
    assert list((tmp_path / "elsewhere").glob("cifar10-*.npz"))


# ----------------------------------------------------------------------------------------------
# The data set object and the stand-in
# ----------------------------------------------------------------------------------------------


def test_subset_is_class_balanced_deterministic_and_in_original_order():
    data = make_synthetic_cifar10(400, 100)
    subset = data.subset(53, 20, seed=3)
    counts = np.bincount(subset.train_labels, minlength=10)
    assert counts.sum() == 53 and counts.max() - counts.min() <= 1
    assert list(np.bincount(subset.test_labels, minlength=10)) == [2] * 10
    again = data.subset(53, 20, seed=3)
    np.testing.assert_array_equal(subset.train_images, again.train_images)
    assert not np.array_equal(subset.train_images, data.subset(53, 20, seed=4).train_images)
    assert "subset" in subset.source and subset.is_synthetic


@pytest.mark.parametrize("sizes, name", [((0, 10), "train_size"), ((10, -1), "test_size"), ((10, 1000), "test_size")])
def test_subset_rejects_bad_sizes(sizes, name):
    with pytest.raises(ValueError, match=name):
        make_synthetic_cifar10(100, 100).subset(*sizes)


def test_stand_in_is_deterministic_balanced_and_labelled():
    first, second = make_synthetic_cifar10(200, 50), make_synthetic_cifar10(200, 50)
    np.testing.assert_array_equal(first.train_images, second.train_images)
    np.testing.assert_array_equal(first.test_labels, second.test_labels)
    assert list(np.bincount(first.train_labels)) == [20] * 10
    assert first.is_synthetic and "NOT CIFAR-10" in first.source
    means = [first.train_images[first.train_labels == k].mean(axis=(0, 1, 2)) for k in range(10)]
    assert min(np.abs(a - b).max() for i, a in enumerate(means) for b in means[i + 1 :]) > 3  # classes differ


def test_cifar10_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="train_images"):
        CIFAR10(np.zeros((2, 28, 28, 3), np.uint8), np.zeros(2, np.int64), np.zeros((0, 32, 32, 3), np.uint8),
                np.zeros(0, np.int64), ("a",), "test")


# ----------------------------------------------------------------------------------------------
# Normalisation
# ----------------------------------------------------------------------------------------------


def test_mean_image_normalisation_centres_every_pixel_in_grey_levels():
    data = make_synthetic_cifar10(100, 10)
    train, _ = to_device(data, batch_size=10, normalization="mean_image")
    assert train.images.abs().mean() > 5  # grey levels, not scaled to unit range
    torch.testing.assert_close(train.images.mean(dim=0), torch.zeros(32, 32, 3), atol=1e-3, rtol=0)


def test_standard_normalisation_has_zero_mean_unit_std_per_channel():
    train, test = to_device(make_synthetic_cifar10(100, 10), batch_size=10, normalization="standard")
    flat = train.images.reshape(-1, 3).double()
    torch.testing.assert_close(flat.mean(dim=0), torch.zeros(3, dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(flat.std(dim=0), torch.ones(3, dtype=torch.float64), atol=1e-3, rtol=0)
    assert test.normalization is train.normalization  # the test split uses the training statistics


def test_unknown_normalisation_raises():
    with pytest.raises(ValueError, match="normalization must be one of"):
        Normalization.fit(np.zeros((1, 32, 32, 3), np.uint8), "zca")


# ----------------------------------------------------------------------------------------------
# Device batches
# ----------------------------------------------------------------------------------------------


def _split(n: int = 250, batch_size: int = 100, **kwargs) -> DeviceBatches:
    data = make_synthetic_cifar10(n, 10)
    normalization = Normalization.fit(data.train_images, "mean_image")
    return DeviceBatches(data.train_images, data.train_labels, batch_size=batch_size, normalization=normalization, **kwargs)


def test_batches_have_the_right_shape_dtype_and_memory_format():
    images, labels = next(iter(_split()))
    assert images.shape == (100, 3, 32, 32) and images.dtype == torch.float32 and images.is_contiguous()
    assert labels.shape == (100,) and labels.dtype == torch.int64
    images, _ = next(iter(_split(channels_last=True)))
    assert images.is_contiguous(memory_format=torch.channels_last)


def test_iteration_count_is_independent_of_the_epoch_length():
    split = _split(250, 100)  # 2 full batches per epoch; the last 50 images of each permutation wait
    assert split.iterations_per_epoch == 2 == len(split)
    assert sum(1 for _ in split.batches(7)) == 7
    assert sum(1 for _ in split.batches(0)) == 0
    assert _split(250, 100, drop_last=False).iterations_per_epoch == 3


def test_an_epoch_with_drop_last_uses_distinct_images():
    split = _split(250, 100)
    labels_seen = torch.cat([split.labels.new_tensor(range(0))] + [y for _, y in split.epoch()])
    assert len(labels_seen) == 200
    images = torch.cat([x for x, _ in _split(250, 100).epoch()]).reshape(200, -1)
    assert len(torch.unique(images, dim=0)) == 200


def test_shuffling_differs_per_epoch_but_is_seeded():
    first = [y.clone() for y in (b[1] for b in _split(seed=1).batches(4))]
    again = [y.clone() for y in (b[1] for b in _split(seed=1).batches(4))]
    other = [y.clone() for y in (b[1] for b in _split(seed=2).batches(4))]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(torch.cat(first[:2]), torch.cat(first[2:]))  # epoch 2 is a new permutation
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_evaluation_split_is_in_order_with_a_short_last_batch():
    data = make_synthetic_cifar10(100, 25)
    _, test = to_device(data, batch_size=10, eval_batch_size=10)
    batches = list(test.epoch())
    assert [len(y) for _, y in batches] == [10, 10, 5]
    torch.testing.assert_close(torch.cat([y for _, y in batches]), torch.as_tensor(data.test_labels))


def test_bad_batch_size_raises_naming_the_parameter():
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="batch_size must be a positive"):
            _split(batch_size=bad)
    with pytest.raises(ValueError, match="batch_size=300 is larger"):
        _split(250, 300)


# ----------------------------------------------------------------------------------------------
# Augmentation on a hand-made image
# ----------------------------------------------------------------------------------------------


def _ramp() -> torch.Tensor:
    """One 1-channel 4x4 image holding 1 .. 16 row by row, so every pixel says where it came from."""
    return torch.arange(1.0, 17.0).reshape(1, 1, 4, 4)


def test_crop_at_the_centre_offset_is_the_identity():
    torch.testing.assert_close(crop_with_offsets(_ramp(), torch.tensor([[2, 2]]), 2), _ramp())


def test_crop_with_zero_padding_translates_the_image():
    shifted = crop_with_offsets(_ramp(), torch.tensor([[0, 1]]), 1, pad_mode="zeros")  # down by 1, no shift in x
    expected = torch.tensor([[0, 0, 0, 0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]], dtype=torch.float32)
    torch.testing.assert_close(shifted[0, 0], expected)
    right = crop_with_offsets(_ramp(), torch.tensor([[1, 0]]), 1, pad_mode="zeros")  # right by 1
    torch.testing.assert_close(right[0, 0, 0], torch.tensor([0.0, 1, 2, 3]))


def test_crop_with_reflect_padding_mirrors_the_border():
    up = crop_with_offsets(_ramp(), torch.tensor([[2, 1]]), 1, pad_mode="reflect")  # up by 1
    torch.testing.assert_close(up[0, 0, -1], torch.tensor([9.0, 10, 11, 12]))  # reflection of row 3 about row 4


def test_each_image_gets_its_own_offset():
    batch = torch.cat([_ramp(), _ramp()])
    out = crop_with_offsets(batch, torch.tensor([[1, 1], [0, 1]]), 1, pad_mode="zeros")
    torch.testing.assert_close(out[0], _ramp()[0])
    assert out[1, 0, 0].sum() == 0


def test_flip_where_flips_only_the_masked_images():
    batch = torch.cat([_ramp(), _ramp()])
    out = flip_where(batch, torch.tensor([True, False]))
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([4.0, 3, 2, 1]))
    torch.testing.assert_close(out[1], batch[1])


def test_random_augment_keeps_shapes_and_yields_translated_or_flipped_images():
    images = torch.randn(16, 3, 32, 32)
    generator = torch.Generator().manual_seed(0)
    out = random_augment(images, Augmentation(crop_padding=2, flip=True, pad_mode="zeros"), generator)
    assert out.shape == images.shape
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for index in range(16):
        candidates = [
            view
            for dy in range(5)
            for dx in range(5)
            for crop in [padded[index, :, dy : dy + 32, dx : dx + 32]]
            for view in (crop, crop.flip(2))
        ]
        assert any(torch.equal(out[index], view) for view in candidates)


def test_augmented_batches_are_seeded():
    first = next(iter(_split(seed=5, augmentation=Augmentation())))[0]
    again = next(iter(_split(seed=5, augmentation=Augmentation())))[0]
    torch.testing.assert_close(first, again)
    assert first.shape == (100, 3, 32, 32)


@pytest.mark.parametrize("kwargs, name", [({"crop_padding": -1}, "crop_padding"), ({"crop_padding": 32}, "crop_padding"),
                                          ({"pad_mode": "edge"}, "pad_mode")])
def test_bad_augmentation_raises(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Augmentation(**kwargs)
