r"""CIFAR-10 for the GPU chapters: find it, decode it once, cache it, and serve batches from the device.

Two halves, one job each:

* **Loading** (numpy and Pillow only; torch is imported lazily): :func:`load_cifar10` returns a
  :class:`CIFAR10` of uint8 arrays from, in this order,

  1. an explicit location, the ``location`` argument or else the ``CLR_CIFAR10`` environment variable:
     torchvision's ``cifar-10-batches-py`` folder (pickled batches) or its parent, or an image folder
     or ``.tar.gz`` holding ``train/<class>/*`` and ``test/<class>/*`` (class index = position of the
     class name in sorted order, which for CIFAR-10 is the standard order airplane .. truck);
  2. torchvision's download (``torchvision.datasets.CIFAR10(download=True)`` into the cache folder);
  3. only when neither works, a procedurally generated 10-class stand-in
     (:func:`make_synthetic_cifar10`), announced with a banner on stdout, whose ``source`` says
     ``"synthetic stand-in"``.

  Decoded images are cached as an uncompressed ``.npz`` in ``CLR_CACHE`` (default
  ``~/.cache/clr_lib``), keyed on the source's path, sizes and modification times, so the 60,000
  JPEGs are decoded once per machine. Decoding runs in worker processes, one per core.

* **Device batches** (torch): :func:`to_device` puts each split on the device once, normalised, as a
  :class:`DeviceBatches`. Shuffling (``torch.randperm`` with a seeded generator on the device),
  augmentation (random crop with padding, horizontal flip) and the memory-format change all happen
  on the device, batched, with no DataLoader workers and no host synchronisation per batch.

Units: a batch is one iteration (one optimizer step). :meth:`DeviceBatches.batches` yields exactly
the number of iterations asked for, crossing epoch boundaries, so a schedule's length never depends
on the epoch length.

Loading times (first load, cached load, decoding in worker processes) are in ``benchmarks/README.md``.
"""

from __future__ import annotations

import concurrent.futures
import gzip
import hashlib
import inspect
import io
import os
import pickle
import socket
import subprocess
import sys
import tarfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily so that loading (and the decode workers) never need it
    import torch

__all__ = [
    "CIFAR10",
    "CIFAR10_CLASSES",
    "NORMALIZATIONS",
    "SYNTHETIC_SOURCE",
    "Augmentation",
    "DeviceBatches",
    "Normalization",
    "crop_with_offsets",
    "default_cache_dir",
    "flip_where",
    "load_cifar10",
    "make_synthetic_cifar10",
    "random_augment",
    "to_device",
]

PathLike = Union[str, "os.PathLike[str]"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
"""The standard CIFAR-10 class order (label 0 .. 9), which is also the sorted order of the names."""

DATA_ENV = "CLR_CIFAR10"
CACHE_ENV = "CLR_CACHE"
SYNTHETIC_SOURCE = "synthetic stand-in"
DOWNLOAD_SOURCE = "torchvision download"
_CACHE_FORMAT = 1  # bump when the decoded arrays for the same source would change
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".gif")
_PICKLE_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_PICKLE_TEST = "test_batch"
_PARALLEL_DECODE_MIN = 4096  # fewer images than this are decoded in-process (no worker start-up, ~0.2 s)


# ----------------------------------------------------------------------------------------------
# The data set object
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CIFAR10:
    """CIFAR-10 (or a stand-in with the same layout) as uint8 arrays in host memory.

    Attributes:
        train_images: ``(N, 32, 32, 3)`` uint8, HWC, RGB.
        train_labels: ``(N,)`` int64 class indices into ``classes``.
        test_images: ``(M, 32, 32, 3)`` uint8.
        test_labels: ``(M,)`` int64.
        classes: class names; label ``k`` is ``classes[k]``.
        source: where the images came from, for humans and results files: a file or folder path,
            ``"torchvision download (...)"`` or ``"synthetic stand-in (...)"``.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
                raise ValueError(f"{split}_images must be uint8 of shape (N, 32, 32, 3), got {images.dtype} {images.shape}")
            if labels.dtype != np.int64 or labels.shape != (len(images),):
                raise ValueError(f"{split}_labels must be int64 of shape ({len(images)},), got {labels.dtype} {labels.shape}")
            if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
                raise ValueError(f"{split}_labels must lie in 0 .. {len(self.classes) - 1}")

    @property
    def is_synthetic(self) -> bool:
        """True for the procedurally generated stand-in: its results are not CIFAR-10 results."""
        return self.source.startswith(SYNTHETIC_SOURCE)

    def subset(self, train_size: int, test_size: int, *, seed: int = 0) -> CIFAR10:
        """A deterministic, class-balanced subset (for the CPU quick profile).

        Each class contributes ``size // num_classes`` images, and the first ``size % num_classes``
        classes one more, picked by a permutation seeded with ``seed``; the picked images keep their
        original order. The same arguments always give the same subset.

        Raises:
            ValueError: a size below 1, or more images of a class than the split holds.
        """
        train = _balanced_indices(self.train_labels, len(self.classes), train_size, "train_size", seed)
        test = _balanced_indices(self.test_labels, len(self.classes), test_size, "test_size", seed + 1)
        return CIFAR10(
            self.train_images[train], self.train_labels[train], self.test_images[test], self.test_labels[test],
            self.classes, f"{self.source} [class-balanced subset: {train_size} train / {test_size} test, seed {seed}]",
        )

    def __repr__(self) -> str:
        return (
            f"CIFAR10({len(self.train_labels)} train, {len(self.test_labels)} test, "
            f"{len(self.classes)} classes, source={self.source!r})"
        )


def _balanced_indices(labels: np.ndarray, num_classes: int, size: int, name: str, seed: int) -> np.ndarray:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"{name} must be a positive whole number of images, got {size!r}")
    rng = np.random.default_rng(seed)
    per_class = [size // num_classes + (1 if k < size % num_classes else 0) for k in range(num_classes)]
    picked = []
    for k, count in enumerate(per_class):
        members = np.flatnonzero(labels == k)
        if count > len(members):
            raise ValueError(f"{name}={size} needs {count} images of class {k}, but the split holds {len(members)}")
        picked.append(rng.permutation(members)[:count])
    return np.sort(np.concatenate(picked))


# ----------------------------------------------------------------------------------------------
# Finding and loading
# ----------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$CLR_CACHE`` if set, else ``~/.cache/clr_lib``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "clr_lib"


def load_cifar10(
    location: PathLike | None = None,
    *,
    cache_dir: PathLike | None = None,
    download: bool = True,
    synthetic_sizes: tuple[int, int] = (50_000, 10_000),
    verbose: bool = True,
) -> CIFAR10:
    """Load CIFAR-10 from the first source that works (see the module docstring for the order).

    Args:
        location: a ``cifar-10-batches-py`` folder (or its parent), an image folder, or a ``.tar.gz``
            of either layout. ``None`` reads ``$CLR_CIFAR10``; if that is unset too, the download and
            then the synthetic stand-in are tried.
        cache_dir: where decoded arrays (and a download) are kept; default :func:`default_cache_dir`.
        download: try ``torchvision.datasets.CIFAR10(download=True)`` when no location is configured.
        synthetic_sizes: (train, test) image counts of the stand-in, the last resort.
        verbose: print progress lines (decoding, cache hits) to stdout. The stand-in's banner is
            printed regardless.

    Returns:
        A :class:`CIFAR10`; its ``source`` says where the images came from.

    Raises:
        ValueError: an explicit location (argument or ``CLR_CIFAR10``) that does not exist or has
            neither layout. An explicit location never falls back to another source.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if location is None and os.environ.get(DATA_ENV):
        location, name = os.environ[DATA_ENV], DATA_ENV
    else:
        name = "location"
    if location is not None:
        path = Path(location).expanduser()
        if not path.exists():
            raise ValueError(f"{name} must be an existing CIFAR-10 folder or .tar.gz, got {str(location)!r} (not found)")
        return _load_cached(path.resolve(), cache, verbose)
    if download:
        root = _try_download(cache / "torchvision", verbose)
        if root is not None:
            data = _load_cached(root, cache, verbose)
            return _with_source(data, f"{DOWNLOAD_SOURCE} ({root})")
    data = make_synthetic_cifar10(*synthetic_sizes)
    _announce_synthetic(data)
    return data


def _with_source(data: CIFAR10, source: str) -> CIFAR10:
    return CIFAR10(data.train_images, data.train_labels, data.test_images, data.test_labels, data.classes, source)


def _say(verbose: bool, message: str) -> None:
    if verbose:
        print(f"[clr_book.cifar.data] {message}", flush=True)


def _try_download(root: Path, verbose: bool) -> Path | None:
    """torchvision's CIFAR-10 download into ``root``; the ``cifar-10-batches-py`` folder, or None."""
    try:
        import torchvision  # noqa: PLC0415 - optional, heavy
    except ImportError:
        _say(verbose, "torchvision is not installed: cannot download CIFAR-10")
        return None
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(60.0)  # a blocked network must not hang the run
    try:
        for train in (True, False):
            torchvision.datasets.CIFAR10(root=str(root), train=train, download=True)
    except Exception as error:  # noqa: BLE001 - any failure (no network, bad checksum) means "fall back"
        _say(verbose, f"CIFAR-10 download failed ({type(error).__name__}: {error}); falling back")
        return None
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return root / "cifar-10-batches-py"


def _announce_synthetic(data: CIFAR10) -> None:
    line = "=" * 78
    print(
        f"\n{line}\n"
        "!!  CIFAR-10 NOT FOUND: USING A SYNTHETIC STAND-IN (procedurally generated)  !!\n"
        f"!!  {len(data.train_labels)} train / {len(data.test_labels)} test images of 10 made-up classes.\n"
        "!!  Numbers from it are NOT CIFAR-10 results. Point the code at the data with\n"
        f"!!  {DATA_ENV}=/path/to/cifar10 (folder or .tar.gz) or an explicit argument.\n"
        f"{line}\n",
        file=sys.stdout,
        flush=True,
    )


# ----------------------------------------------------------------------------------------------
# The cache
# ----------------------------------------------------------------------------------------------


def _fingerprint(path: Path) -> str:
    """Hash of the source: its path and, for every file in it, the relative name, size and mtime."""
    digest = hashlib.sha256(f"v{_CACHE_FORMAT}|{path}".encode())
    if path.is_file():
        stat = path.stat()
        digest.update(f"|{stat.st_size}|{stat.st_mtime_ns}".encode())
    else:
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = Path(root) / name
                stat = full.stat()
                digest.update(f"|{full.relative_to(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def _load_cached(path: Path, cache: Path, verbose: bool) -> CIFAR10:
    cache_file = cache / f"cifar10-{_fingerprint(path)}.npz"
    if cache_file.exists():
        try:
            with np.load(cache_file, allow_pickle=False) as arrays:
                data = CIFAR10(
                    arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"],
                    tuple(str(c) for c in arrays["classes"]), str(path),
                )
            _say(verbose, f"loaded {path} from the cache {cache_file}")
            return data
        except Exception as error:  # noqa: BLE001 - a damaged cache file is rebuilt, never trusted
            _say(verbose, f"ignoring unreadable cache file {cache_file} ({error})")
    _say(verbose, f"decoding {path} (first load; cached afterwards in {cache})")
    data = _read_location(path)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_name(f"{cache_file.stem}.{os.getpid()}.partial.npz")
        np.savez(
            partial, train_images=data.train_images, train_labels=data.train_labels, test_images=data.test_images,
            test_labels=data.test_labels, classes=np.asarray(data.classes),
        )
        os.replace(partial, cache_file)  # atomic: a concurrent reader sees the old state or the whole file
    except OSError as error:
        warnings.warn(f"could not write the CIFAR-10 cache {cache_file}: {error}", RuntimeWarning, stacklevel=2)
    return data


# ----------------------------------------------------------------------------------------------
# Reading the layouts
# ----------------------------------------------------------------------------------------------


def _layout_error(path: Path) -> ValueError:
    return ValueError(
        f"location {str(path)!r} is not a CIFAR-10 source: expected torchvision's cifar-10-batches-py folder "
        "(data_batch_1..5, test_batch, batches.meta) or its parent, or a folder or .tar.gz with "
        "train/<class>/*.jpg and test/<class>/*.jpg"
    )


def _read_location(path: Path) -> CIFAR10:
    """Decode a source (no cache). Raises ``ValueError`` when it has neither layout."""
    if path.is_dir():
        for candidate in (path, path / "cifar-10-batches-py"):
            if (candidate / _PICKLE_TEST).is_file() and all((candidate / n).is_file() for n in _PICKLE_TRAIN):
                files = {n: (candidate / n).read_bytes() for n in (*_PICKLE_TRAIN, _PICKLE_TEST, "batches.meta") if (candidate / n).is_file()}
                return _from_pickles(files, str(path))
        if (path / "train").is_dir() and (path / "test").is_dir():
            members = {}
            for split in ("train", "test"):
                for class_dir in sorted(p for p in (path / split).iterdir() if p.is_dir()):
                    for image in sorted(class_dir.iterdir()):
                        if image.suffix.lower() in _IMAGE_SUFFIXES:
                            members[f"{split}/{class_dir.name}/{image.name}"] = image.read_bytes()
            return _from_members(members, path)
        raise _layout_error(path)
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
        return _from_members(_read_tar(path), path)
    raise _layout_error(path)


def _read_tar(path: Path) -> dict[str, bytes]:
    """All regular files of a (gzipped) tar, by name; decompressed in memory first (faster than streaming)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    members = {}
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as archive:
        for member in archive:
            if member.isfile():
                members[member.name] = raw[member.offset_data : member.offset_data + member.size]
    return members


def _strip_common_root(names: Sequence[str]) -> str:
    """The single top folder all names share (e.g. ``cifar10-jpeg/``), or ``""``."""
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) == 1 and all("/" in name for name in names):
        top = tops.pop()
        if top not in ("train", "test"):
            return top + "/"
    return ""


def _from_members(members: dict[str, bytes], path: Path) -> CIFAR10:
    """Images from ``{relative name: bytes}``: either pickled batches or ``train|test/<class>/<image>``."""
    names = [name.lstrip("./") for name in members]
    members = dict(zip(names, members.values()))
    by_base = {name.rsplit("/", 1)[-1]: name for name in names}
    if _PICKLE_TEST in by_base and all(n in by_base for n in _PICKLE_TRAIN):
        return _from_pickles({base: members[full] for base, full in by_base.items()}, str(path))
    prefix = _strip_common_root(names)
    splits: dict[str, dict[str, list[tuple[str, bytes]]]] = {"train": {}, "test": {}}
    for name, blob in members.items():
        parts = name[len(prefix) :].split("/")
        if len(parts) == 3 and parts[0] in splits and parts[2].lower().endswith(_IMAGE_SUFFIXES):
            splits[parts[0]].setdefault(parts[1], []).append((parts[2], blob))
    if not splits["train"] or not splits["test"]:
        raise _layout_error(path)
    classes = tuple(sorted(splits["train"]))
    if tuple(sorted(splits["test"])) != classes:
        raise ValueError(
            f"location {str(path)!r}: train and test hold different classes: {classes} vs {tuple(sorted(splits['test']))}"
        )
    blobs, names_in_order, labels = [], [], {"train": [], "test": []}
    for split in ("train", "test"):
        for label, class_name in enumerate(classes):
            for file_name, blob in sorted(splits[split][class_name]):
                blobs.append(blob)
                labels[split].append(label)
                names_in_order.append(f"{split}/{class_name}/{file_name}")
    images = _decode_images(blobs, names_in_order)  # both splits in one go: one round of worker start-up
    train_count = len(labels["train"])
    return CIFAR10(
        images[:train_count], np.asarray(labels["train"], dtype=np.int64),
        images[train_count:], np.asarray(labels["test"], dtype=np.int64), classes=classes, source=str(path),
    )


def _from_pickles(files: dict[str, bytes], source: str) -> CIFAR10:
    """torchvision's / the official ``cifar-10-batches-py`` pickles (rows of 3072 bytes, CHW)."""

    def batch(name: str) -> tuple[np.ndarray, np.ndarray]:
        entry = pickle.loads(files[name], encoding="latin1")  # noqa: S301 - the user's own data set
        images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = entry.get("labels", entry.get("fine_labels"))
        return np.ascontiguousarray(images), np.asarray(labels, dtype=np.int64)

    train = [batch(name) for name in _PICKLE_TRAIN]
    test_images, test_labels = batch(_PICKLE_TEST)
    classes = CIFAR10_CLASSES
    if "batches.meta" in files:
        classes = tuple(pickle.loads(files["batches.meta"], encoding="latin1")["label_names"])  # noqa: S301
    return CIFAR10(
        np.concatenate([images for images, _ in train]), np.concatenate([labels for _, labels in train]),
        test_images, test_labels, classes, source,
    )


# ----------------------------------------------------------------------------------------------
# Decoding, in worker processes
# ----------------------------------------------------------------------------------------------


def _decode_chunk(blobs: list[bytes]) -> np.ndarray:
    """Decode encoded images to one ``(n, 32, 32, 3)`` uint8 array (also the body of the worker processes,
    which run this function's source: it must stay self-contained, using only ``io``, ``np`` and Pillow).

    Raises ``ValueError`` with the chunk-relative index of an image that is not 32 x 32.
    """
    from PIL import Image  # noqa: PLC0415 - keeps the module importable without Pillow

    out = np.empty((len(blobs), 32, 32, 3), dtype=np.uint8)
    for index, blob in enumerate(blobs):
        with Image.open(io.BytesIO(blob)) as image:
            if image.size != (32, 32):
                raise ValueError(f"image {index} is {image.size[0]}x{image.size[1]}, expected 32x32")
            out[index] = np.asarray(image.convert("RGB"))
    return out


def _decode_in_subprocess(blobs: list[bytes]) -> np.ndarray:
    """Run :func:`_decode_chunk` on ``blobs`` in a fresh ``python`` that imports only numpy and Pillow.

    A plain subprocess (not multiprocessing) so that nothing depends on how the caller's program is
    written: spawn-based pools re-import the caller's ``__main__`` (and fail in scripts without an
    ``if __name__ == "__main__"`` guard), and fork is unsafe in a process that holds torch's threads.
    """
    driver = (
        "import io, pickle, sys\nimport numpy as np\n"
        + inspect.getsource(_decode_chunk)
        + "\nsys.stdout.buffer.write(_decode_chunk(pickle.load(sys.stdin.buffer)).tobytes())\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", driver], input=pickle.dumps(blobs, protocol=pickle.HIGHEST_PROTOCOL),
        capture_output=True, check=False,
    )
    if completed.returncode != 0:
        lines = completed.stderr.decode(errors="replace").strip().splitlines() or ["no message"]
        raise ValueError(lines[-1].removeprefix("ValueError: "))
    return np.frombuffer(completed.stdout, dtype=np.uint8).reshape(len(blobs), 32, 32, 3)


def _decode_images(blobs: list[bytes], names: list[str]) -> np.ndarray:
    """Decode all images: in-process for small sets, else one worker process per available core."""
    if not blobs:
        return np.empty((0, 32, 32, 3), dtype=np.uint8)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = min(cores, 32, len(blobs))
    bounds = np.linspace(0, len(blobs), workers + 1).astype(int)
    try:
        if workers > 1 and len(blobs) >= _PARALLEL_DECODE_MIN:
            try:
                with concurrent.futures.ThreadPoolExecutor(workers) as pool:  # threads only wait on the processes
                    chunks = [blobs[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
                    return np.concatenate(list(pool.map(_decode_in_subprocess, chunks)))
            except OSError:  # no usable sys.executable (embedded Python): decode here instead
                pass
        return _decode_chunk(blobs)
    except ValueError as error:
        raise ValueError(f"cannot decode the {len(blobs)} images {names[0]} .. {names[-1]}: {error}") from error


# ----------------------------------------------------------------------------------------------
# The synthetic stand-in
# ----------------------------------------------------------------------------------------------


def make_synthetic_cifar10(train_size: int = 50_000, test_size: int = 10_000, *, seed: int = 0) -> CIFAR10:
    """A deterministic, learnable 10-class stand-in with CIFAR-10's shapes and dtypes.

    Class ``k`` is a grating (stripes) at ``18 k`` degrees (+- 4 degrees of jitter) with a period of
    ``16 / (1 + k % 3)`` pixels, in a class colour over a background of another class colour, with a
    random phase, a random brightness (x 0.75 .. 1.25) and Gaussian pixel noise (sigma 24 grey levels). Labels are balanced and interleaved.
    A small CNN learns it in a few hundred iterations; it is there so that code paths run without
    the real data, never to produce numbers for the book.
    """
    for name, size in (("train_size", train_size), ("test_size", test_size)):
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"{name} must be a positive whole number of images, got {size!r}")
    palette = np.random.default_rng(1234).uniform(40, 215, size=(10, 2, 3))  # (class, stripe|background, RGB)
    train = _synthetic_split(train_size, np.random.default_rng([seed, 0]), palette)
    test = _synthetic_split(test_size, np.random.default_rng([seed, 1]), palette)
    return CIFAR10(
        *train, *test, classes=tuple(f"synthetic_{k}" for k in range(10)),
        source=f"{SYNTHETIC_SOURCE} (procedurally generated, seed {seed}; NOT CIFAR-10)",
    )


def _synthetic_split(size: int, rng: np.random.Generator, palette: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = (np.arange(size) % 10).astype(np.int64)
    rng.shuffle(labels)
    coords = np.arange(32, dtype=np.float32) - 15.5
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    images = np.empty((size, 32, 32, 3), dtype=np.uint8)
    for start in range(0, size, 4096):
        batch = labels[start : start + 4096]
        n = len(batch)
        angle = np.deg2rad(18.0 * batch + rng.normal(0, 4, n)).astype(np.float32)
        frequency = (2 * np.pi * (1 + batch % 3) / 16).astype(np.float32)
        phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
        along = xx[None] * np.cos(angle)[:, None, None] + yy[None] * np.sin(angle)[:, None, None]
        stripe = 0.5 + 0.5 * np.sin(frequency[:, None, None] * along + phase[:, None, None])  # (n, 32, 32) in [0, 1]
        colours = palette[batch].astype(np.float32)  # (n, 2, 3)
        pixels = colours[:, None, None, 1] + stripe[..., None] * (colours[:, None, None, 0] - colours[:, None, None, 1])
        pixels *= rng.uniform(0.75, 1.25, (n, 1, 1, 1)).astype(np.float32)
        pixels += 24.0 * rng.standard_normal(pixels.shape, dtype=np.float32)
        images[start : start + n] = np.clip(pixels, 0, 255).astype(np.uint8)
    return images, labels


# ----------------------------------------------------------------------------------------------
# Normalisation and augmentation (torch, on the device)
# ----------------------------------------------------------------------------------------------

NORMALIZATIONS = ("mean_image", "channel_mean", "standard")


@dataclass(frozen=True, eq=False)
class Normalization:
    r"""Input normalisation ``(x - mean) * scale`` for pixels ``x`` in 0 .. 255, fitted on training images.

    Modes:
        ``"mean_image"``: Caffe's cifar10 example (``mean_file``): subtract the per-pixel mean image of
            the training set, no scaling, so inputs stay in grey levels (about -128 .. 128). The Caffe
            net's initialisation (conv1 std 1e-4) assumes this scale.
        ``"channel_mean"``: subtract the per-channel mean, no scaling.
        ``"standard"``: :math:`(x / 255 - \mu_c) / \sigma_c` with per-channel mean and std, the usual
            choice for modern nets.

    Attributes:
        mode: one of :data:`NORMALIZATIONS`.
        mean: float32, ``(3, 32, 32)`` for ``mean_image`` or ``(3, 1, 1)``, in grey levels.
        scale: float32 ``(3, 1, 1)``: 1 for the Caffe modes, :math:`1 / (255 \sigma_c)` for standard.
    """

    mode: str
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, train_images: np.ndarray, mode: str = "mean_image") -> Normalization:
        """Statistics of ``train_images`` (``(N, 32, 32, 3)`` uint8) for ``mode``; ``ValueError`` if unknown."""
        if mode not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {', '.join(map(repr, NORMALIZATIONS))}, got {mode!r}")
        if len(train_images) == 0:
            raise ValueError("train_images must hold at least one image to fit a normalization")
        if mode == "mean_image":
            mean = train_images.mean(axis=0, dtype=np.float64).transpose(2, 0, 1)
            scale = np.ones((3, 1, 1))
        else:
            channel_mean, channel_std = _channel_moments(train_images)
            mean = channel_mean.reshape(3, 1, 1)
            scale = np.ones((3, 1, 1)) if mode == "channel_mean" else 1.0 / np.maximum(channel_std, 1e-6).reshape(3, 1, 1)
        return cls(mode, mean.astype(np.float32), scale.astype(np.float32))


def _channel_moments(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of ``(N, H, W, 3)`` uint8 images, in chunks (no full float copy)."""
    total = np.zeros(3)
    squares = np.zeros(3)
    for start in range(0, len(images), 4096):
        chunk = images[start : start + 4096].reshape(-1, 3).astype(np.float64)
        total += chunk.sum(axis=0)
        squares += (chunk * chunk).sum(axis=0)
    count = images.shape[0] * images.shape[1] * images.shape[2]
    mean = total / count
    return mean, np.sqrt(np.maximum(squares / count - mean * mean, 0.0))


@dataclass(frozen=True)
class Augmentation:
    """Batched on-device augmentation: random crop after padding, then random horizontal flip.

    Attributes:
        crop_padding: pixels of padding on each side before a random 32x32 crop (a random translation
            by -p .. p pixels in each direction); 0 turns cropping off.
        flip: flip each image left-right with probability 1/2.
        pad_mode: ``"reflect"`` (as airbench) or ``"zeros"`` (zero after normalisation, i.e. the mean colour).
    """

    crop_padding: int = 4
    flip: bool = True
    pad_mode: Literal["reflect", "zeros"] = "reflect"

    def __post_init__(self) -> None:
        if isinstance(self.crop_padding, bool) or not isinstance(self.crop_padding, int) or not 0 <= self.crop_padding < 32:
            raise ValueError(f"crop_padding must be a whole number of pixels in 0 .. 31, got {self.crop_padding!r}")
        if self.pad_mode not in ("reflect", "zeros"):
            raise ValueError(f"pad_mode must be 'reflect' or 'zeros', got {self.pad_mode!r}")


def crop_with_offsets(images: torch.Tensor, offsets: torch.Tensor, padding: int, pad_mode: str = "reflect") -> torch.Tensor:
    """Pad a batch by ``padding`` pixels and crop each image back to its size at its own offset.

    Args:
        images: ``(B, C, H, W)`` floating batch.
        offsets: ``(B, 2)`` int64 ``(row, column)`` of each crop's top-left corner in the padded image,
            each in ``0 .. 2 * padding``; ``(padding, padding)`` returns the image unchanged.
        padding: pixels added on every side.
        pad_mode: ``"reflect"`` or ``"zeros"``.

    Two ``gather`` calls, no Python loop over images, so it runs on any device at batch speed.
    """
    import torch.nn.functional as F  # noqa: PLC0415

    if padding == 0:
        return images
    batch, channels, height, width = images.shape
    padded = F.pad(images, (padding,) * 4, mode="reflect" if pad_mode == "reflect" else "constant")
    rows = offsets[:, :1] + _arange(height, images.device)  # (B, H)
    cols = offsets[:, 1:] + _arange(width, images.device)  # (B, W)
    picked_rows = padded.gather(2, rows[:, None, :, None].expand(batch, channels, height, width + 2 * padding))
    return picked_rows.gather(3, cols[:, None, None, :].expand(batch, channels, height, width))


def flip_where(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Flip left-right the images of a ``(B, C, H, W)`` batch whose ``mask`` (``(B,)`` bool) is True."""
    import torch  # noqa: PLC0415

    return torch.where(mask[:, None, None, None], images.flip(3), images)


def random_augment(images: torch.Tensor, augmentation: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """Apply ``augmentation`` with random numbers from ``generator`` (on the images' device)."""
    import torch  # noqa: PLC0415

    batch = images.shape[0]
    if augmentation.crop_padding:
        span = 2 * augmentation.crop_padding + 1
        offsets = torch.randint(0, span, (batch, 2), generator=generator, device=images.device)
        images = crop_with_offsets(images, offsets, augmentation.crop_padding, augmentation.pad_mode)
    if augmentation.flip:
        images = flip_where(images, torch.rand(batch, generator=generator, device=images.device) < 0.5)
    return images


_ARANGE_CACHE: dict[tuple[int, str], torch.Tensor] = {}


def _arange(size: int, device: torch.device) -> torch.Tensor:
    import torch  # noqa: PLC0415

    key = (size, str(device))
    if key not in _ARANGE_CACHE:
        _ARANGE_CACHE[key] = torch.arange(size, device=device)
    return _ARANGE_CACHE[key]


# ----------------------------------------------------------------------------------------------
# Device-resident batches
# ----------------------------------------------------------------------------------------------


class DeviceBatches:
    """One split, normalised once and held on the device, served as ``(images, labels)`` batches.

    Images are stored as float ``(N, H, W, C)``; a batch is gathered with one ``index_select`` and
    returned as an ``(B, C, H, W)`` view, which is physically channels_last (free), or made
    contiguous NCHW when ``channels_last=False``.

    Args:
        images: ``(N, 32, 32, 3)`` uint8 (host array or tensor).
        labels: ``(N,)`` integer labels.
        batch_size: images per batch (per iteration), >= 1.
        normalization: a fitted :class:`Normalization` (fit it on the TRAINING split for both splits).
        device: where the split lives and every batch is made.
        augmentation: an :class:`Augmentation`, or None (no augmentation; the Caffe replication).
        shuffle: a fresh ``torch.randperm`` per epoch from a generator on the device seeded with ``seed``.
        drop_last: with True (the default, for training), each epoch yields ``N // batch_size``
            full batches and the last ``N % batch_size`` images of that epoch's permutation are not
            used in that epoch (other images are left out next epoch, as the permutation changes).
            Every batch then has the same shape, which torch.compile and CUDA graphs want. With False,
            the last batch of an epoch is smaller (for evaluation).
        seed: seed of the shuffling and augmentation generator.
        channels_last: return batches in channels_last memory format.
        dtype: storage and batch dtype (default float32; autocast still computes in its own dtype).

    Raises:
        ValueError: ``batch_size`` < 1, ``drop_last`` with fewer images than ``batch_size``, or
            images and labels of different lengths.
    """

    def __init__(
        self,
        images: np.ndarray | torch.Tensor,
        labels: np.ndarray | torch.Tensor,
        *,
        batch_size: int,
        normalization: Normalization,
        device: str | torch.device = "cpu",
        augmentation: Augmentation | None = None,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        channels_last: bool = False,
        dtype: torch.dtype | None = None,
    ) -> None:
        import torch  # noqa: PLC0415

        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive whole number of images, got {batch_size!r}")
        if len(images) != len(labels):
            raise ValueError(f"images and labels must have the same length, got {len(images)} and {len(labels)}")
        if drop_last and len(images) < batch_size:
            raise ValueError(f"batch_size={batch_size} is larger than the split ({len(images)} images) with drop_last=True")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.augmentation = augmentation
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.normalization = normalization
        dtype = dtype or torch.float32
        pixels = torch.as_tensor(np.asarray(images)).to(self.device)  # uint8 upload: 4x less traffic
        mean = torch.as_tensor(normalization.mean.transpose(1, 2, 0), device=self.device)  # HWC
        scale = torch.as_tensor(normalization.scale.transpose(1, 2, 0), device=self.device)
        normalised = pixels.to(torch.float32).sub_(mean).mul_(scale)  # in place: one float copy of the split
        self.images = normalised.to(dtype).contiguous()  # (N, H, W, C)
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64).to(self.device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self._order: torch.Tensor | None = None  # the training stream's permutation of this epoch
        self._position = self.iterations_per_epoch  # index of the next batch in it (at the end: a new epoch)

    def __len__(self) -> int:
        """Batches per epoch (iterations per epoch)."""
        return self.iterations_per_epoch

    @property
    def num_images(self) -> int:
        return len(self.labels)

    @property
    def iterations_per_epoch(self) -> int:
        """``N // batch_size`` with ``drop_last``, else ``ceil(N / batch_size)``."""
        full, rest = divmod(self.num_images, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def _batch(self, indices: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(indices, slice):
            images, labels = self.images[indices], self.labels[indices]
        else:
            images, labels = self.images.index_select(0, indices), self.labels.index_select(0, indices)
        images = images.permute(0, 3, 1, 2)  # NCHW view of NHWC storage = channels_last
        if self.augmentation is not None:
            images = random_augment(images, self.augmentation, self.generator)
        if self.channels_last:
            import torch  # noqa: PLC0415

            return images.contiguous(memory_format=torch.channels_last), labels
        return images.contiguous(), labels

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over the split: :attr:`iterations_per_epoch` batches."""
        import torch  # noqa: PLC0415

        order = torch.randperm(self.num_images, generator=self.generator, device=self.device) if self.shuffle else None
        for index in range(self.iterations_per_epoch):
            start = index * self.batch_size
            stop = min(start + self.batch_size, self.num_images)
            yield self._batch(slice(start, stop) if order is None else order[start:stop])

    __iter__ = epoch

    def batches(self, num_iterations: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The next ``num_iterations`` batches of the training stream, starting new epochs (reshuffled) as needed.

        The stream remembers where it is: a second call continues the epoch the first one left off
        (unlike :meth:`epoch`, which always makes a whole new pass), and :meth:`state_dict` /
        :meth:`load_state_dict` carry that position, with the generator, across a checkpoint.
        """
        import torch  # noqa: PLC0415

        if isinstance(num_iterations, bool) or not isinstance(num_iterations, int) or num_iterations < 0:
            raise ValueError(f"num_iterations must be a whole number of iterations >= 0, got {num_iterations!r}")
        for _ in range(num_iterations):
            if self._position >= self.iterations_per_epoch:  # a new epoch: a fresh permutation
                self._order = (torch.randperm(self.num_images, generator=self.generator, device=self.device)
                               if self.shuffle else None)
                self._position = 0
            start = self._position * self.batch_size
            stop = min(start + self.batch_size, self.num_images)
            self._position += 1
            yield self._batch(slice(start, stop) if self._order is None else self._order[start:stop])

    def state_dict(self) -> dict[str, Any]:
        """Where :meth:`batches` is: the generator's state, this epoch's order and the next batch's index."""
        return {"generator": self.generator.get_state(), "position": self._position,
                "order": None if self._order is None else self._order.cpu().clone(), "num_images": self.num_images,
                "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the stream from ``state`` (from :meth:`state_dict` of a stream over the same split).

        Raises:
            ValueError: a state of a stream with another number of images or batch size.
        """
        if (state["num_images"], state["batch_size"]) != (self.num_images, self.batch_size):
            raise ValueError(f"state is of a stream of {state['num_images']} images in batches of "
                             f"{state['batch_size']}, this one has {self.num_images} in batches of {self.batch_size}")
        self.generator.set_state(state["generator"])
        self._position = state["position"]
        self._order = None if state["order"] is None else state["order"].to(self.device)

    def __repr__(self) -> str:
        return (
            f"DeviceBatches({self.num_images} images on {self.device}, batch_size={self.batch_size}, "
            f"{self.iterations_per_epoch} iterations/epoch, shuffle={self.shuffle}, drop_last={self.drop_last}, "
            f"normalization={self.normalization.mode!r}, augmentation={self.augmentation!r})"
        )


def to_device(
    data: CIFAR10,
    *,
    batch_size: int,
    device: str | torch.device = "cpu",
    normalization: str = "mean_image",
    augmentation: Augmentation | None = None,
    seed: int = 0,
    channels_last: bool = False,
    eval_batch_size: int = 1000,
    dtype: torch.dtype | None = None,
) -> tuple[DeviceBatches, DeviceBatches]:
    """Both splits on ``device``: a shuffled training stream and an in-order test pass.

    The normalisation is fitted on the training images and applied to both splits. The training
    split uses ``drop_last=True`` and ``augmentation``; the test split is never shuffled or
    augmented, and its last batch may be smaller (``drop_last=False``).

    Returns:
        ``(train, test)`` :class:`DeviceBatches`.
    """
    fitted = Normalization.fit(data.train_images, normalization)
    common = {"normalization": fitted, "device": device, "channels_last": channels_last, "dtype": dtype}
    train = DeviceBatches(
        data.train_images, data.train_labels, batch_size=batch_size, augmentation=augmentation, seed=seed, **common
    )
    test = DeviceBatches(
        data.test_images, data.test_labels, batch_size=eval_batch_size, shuffle=False, drop_last=False, **common
    )
    return train, test
