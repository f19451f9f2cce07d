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

  Pickled batches are read only where torchvision puts them (``data_batch_1`` .. ``5`` and
  ``test_batch`` in the folder, its ``cifar-10-batches-py`` subfolder, or an archive's root or
  single top folder) and only through a restricted unpickler that builds plain data and numpy
  arrays, never calls anything else: a crafted pickle cannot run code. A damaged source (a cut-off
  or non-tar archive, an unreadable image, a batch of the wrong shape) raises ``ValueError`` naming
  the archive or folder, the member or file, and what is wrong.

  Decoded images are cached as an uncompressed ``.npz`` in ``CLR_CACHE`` (default
  ``~/.cache/clr_lib``), so the 60,000 JPEGs are decoded once per machine. The cache key is a
  SHA-256 of an archive's bytes, or, for a folder, every file's name, size, mtime, ctime and inode
  (see :func:`_fingerprint`). The cache file is written atomically (a temporary file, then
  ``os.replace``); a damaged cache file is deleted and rebuilt. Decoding runs in worker processes,
  one per core.

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
import contextlib
import gzip
import hashlib
import inspect
import io
import json
import os
import pickle
import re
import secrets
import socket
import subprocess
import sys
import tarfile
import time
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
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
_BATCH_FOLDER = "cifar-10-batches-py"
_PICKLE_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_PICKLE_TEST = "test_batch"
_PICKLE_BATCHES = (*_PICKLE_TRAIN, _PICKLE_TEST)
_PICKLE_META = "batches.meta"
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
            neither layout, or a damaged source: an archive that is not a tar(.gz), is truncated or
            corrupt; an image that is not a readable 32 x 32 image; a pickled batch that asks for
            anything but plain data and numpy arrays, lacks ``data`` or ``labels``, or has the wrong
            sizes. The message names the archive or folder and the member or file. An explicit
            location never falls back to another source.
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

_PARTIAL_SUFFIX = ".partial"
_STALE_PARTIAL_AGE_S = 3600.0  # a cache write takes seconds; an older temporary file is left over from a killed one
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:64] or "host"


def _fingerprint(path: Path) -> str:
    """The cache key of a source; it changes whenever the source's contents may have changed.

    * An archive (a file): the SHA-256 of its bytes, so any rewrite is noticed, even one that keeps
      the size and modification time; a moved or copied archive still finds its cache, as the path
      is not part of the key. Hashing reads the archive once more, which is small next to
      decoding it.
    * A folder: its path and, for every file under it in sorted order, the relative name, size,
      modification time, change time (ctime) and inode number. File contents are not read (60,000
      images, or 180 MB of pickled batches, on every load): writing a file sets its ctime to the
      current time, and ``os.utime`` cannot set it back, so a file rewritten with the same size and
      its old mtime restored still changes the key. A ``chmod`` or a copy changes it too: a
      rebuild, never a stale hit.

    Raises:
        ValueError: an archive that cannot be read.
    """
    digest = hashlib.sha256(f"v{_CACHE_FORMAT}|".encode())
    if path.is_file():
        digest.update(b"archive contents|")
        try:
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except OSError as error:
            raise ValueError(f"archive {str(path)!r} cannot be read ({_brief(error)})") from error
        return digest.hexdigest()[:20]
    digest.update(f"folder|{path}".encode())
    visited = set()  # symlinked class folders are read, so they are walked too, each folder once
    for root, dirs, files in os.walk(path, followlinks=True):
        folder = os.stat(root)
        if (folder.st_dev, folder.st_ino) in visited:
            dirs.clear()
            continue
        visited.add((folder.st_dev, folder.st_ino))
        dirs.sort()
        for name in sorted(files):
            full = Path(root) / name
            try:
                stat = full.stat()
            except OSError:  # e.g. a dangling symlink: hashed as such; reading it later names it
                stat = full.lstat()
            digest.update(
                f"|{full.relative_to(path)}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ctime_ns}|{stat.st_ino}".encode()
            )
    return digest.hexdigest()[:20]


def _load_cached(path: Path, cache: Path, verbose: bool) -> CIFAR10:
    cache_file = cache / f"cifar10-{_fingerprint(path)}.npz"
    _remove_stale_partials(cache)
    if cache_file.is_file():
        data = _read_cache(cache_file, str(path), verbose)
        if data is not None:
            return data
    _say(verbose, f"decoding {path} (first load; cached afterwards in {cache})")
    data = _read_location(path)
    _write_cache(data, cache_file)
    return data


def _read_cache(cache_file: Path, source: str, verbose: bool) -> CIFAR10 | None:
    """The cached arrays, or None after deleting a cache file that is unreadable, partial or inconsistent."""
    try:
        with np.load(cache_file, allow_pickle=False) as arrays:
            data = CIFAR10(
                arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"],
                tuple(str(c) for c in arrays["classes"]), source,
            )
    except Exception as error:  # noqa: BLE001 - a damaged cache file is rebuilt, never trusted
        _say(verbose, f"deleting the unreadable cache file {cache_file} ({_brief(error)}); decoding again")
        with contextlib.suppress(OSError):
            cache_file.unlink()
        return None
    _say(verbose, f"loaded {source} from the cache {cache_file}")
    return data


def _write_cache(data: CIFAR10, cache_file: Path) -> None:
    """Write ``data`` to ``cache_file`` atomically; warn (never raise) when the cache cannot be written.

    The arrays go to a new, uniquely named temporary file in the cache folder
    (``.cifar10-<key>.<host>.<pid>.<random>.partial``), which ``os.replace`` then renames to the cache
    file in one step: a reader sees no file or the whole file, never a partial one, and concurrent
    writers never share a temporary file. An interrupted write (an exception, Ctrl-C) deletes its
    temporary file; a killed one leaves it for :func:`_remove_stale_partials`.
    """
    temp: Path | None = None
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temp = cache_file.with_name(f".{cache_file.stem}.{_HOST}.{os.getpid()}.{secrets.token_hex(8)}{_PARTIAL_SUFFIX}")
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0o666 & ~umask, like any new file
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(
                handle, train_images=data.train_images, train_labels=data.train_labels, test_images=data.test_images,
                test_labels=data.test_labels, classes=np.asarray(data.classes),
            )
        os.replace(temp, cache_file)
        temp = None
    except OSError as error:
        warnings.warn(f"could not write the CIFAR-10 cache {cache_file}: {error}", RuntimeWarning, stacklevel=4)
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                temp.unlink()


def _remove_stale_partials(cache: Path) -> None:
    """Delete the temporary files of cache writes that were killed, on every load.

    A temporary file is stale when the process that wrote it (named in the file name) no longer runs
    on this host, or when it is older than an hour (a write takes seconds; this also covers files
    written on another host sharing the folder). ``cifar10-<key>.<pid>.partial.npz`` files of the
    earlier, unsafe scheme are deleted by age alone.
    """
    try:
        entries = list(cache.iterdir())
    except OSError:
        return
    now = time.time()
    for entry in entries:
        name = entry.name
        owner_gone = False
        if name.startswith(".cifar10-") and name.endswith(_PARTIAL_SUFFIX):
            parts = name[1:].split(".")  # cifar10-<key>, host, pid, random, partial
            if len(parts) == 5 and parts[1] == _HOST and parts[2].isdigit():
                owner_gone = not _process_is_running(int(parts[2]))
        elif not (name.startswith("cifar10-") and name.endswith(".partial.npz")):
            continue
        try:
            stale = owner_gone or now - entry.stat().st_mtime > _STALE_PARTIAL_AGE_S
            if stale and entry.is_file():
                entry.unlink()
        except OSError:  # deleted by another process meanwhile, or not ours to delete
            continue


def _process_is_running(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows; rely on the age rule
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


# ----------------------------------------------------------------------------------------------
# Reading the layouts
# ----------------------------------------------------------------------------------------------
#
# Every problem with a source's contents raises ValueError naming the archive (or folder) and the
# member (or file) and saying what is wrong: the experiment CLIs print that one line and exit with 2.


def _brief(error: BaseException) -> str:
    """``Type: message`` of an exception, on one line."""
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _in_archive(path: Path, member: str) -> str:
    return f"archive {str(path)!r}, member {member!r}"


def _in_folder(path: Path, name: str) -> str:
    return f"folder {str(path)!r}, file {name!r}"


def _layout_error(path: Path) -> ValueError:
    return ValueError(
        f"location {str(path)!r} is not a CIFAR-10 source: expected torchvision's cifar-10-batches-py folder "
        "(data_batch_1..5, test_batch, batches.meta) or its parent, or a folder or .tar.gz with "
        "train/<class>/*.jpg and test/<class>/*.jpg"
    )


def _read_location(path: Path) -> CIFAR10:
    """Decode a source (no cache). Raises ``ValueError`` when it has neither layout or is damaged."""
    if path.is_dir():
        return _read_folder(path)
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
        return _read_archive(path)
    raise _layout_error(path)


def _read_file(path: Path, name: str) -> bytes:
    try:
        return (path / name).read_bytes()
    except OSError as error:
        raise ValueError(f"{_in_folder(path, name)} cannot be read ({_brief(error)})") from error


def _read_folder(path: Path) -> CIFAR10:
    """Pickled batches in ``path`` or ``path/cifar-10-batches-py``, else ``train|test/<class>/<image>``."""
    for candidate in (path, path / _BATCH_FOLDER):
        if all((candidate / name).is_file() for name in _PICKLE_BATCHES):
            names = [name for name in (*_PICKLE_BATCHES, _PICKLE_META) if (candidate / name).is_file()]
            relative = {name: (candidate / name).relative_to(path).as_posix() for name in names}
            return _from_pickles(
                {name: _read_file(path, relative[name]) for name in names},
                {name: _in_folder(path, relative[name]) for name in names}, str(path),
            )
    if (path / "train").is_dir() and (path / "test").is_dir():
        members = {}
        for split in ("train", "test"):
            for class_dir in sorted(p for p in (path / split).iterdir() if p.is_dir()):
                for image in sorted(class_dir.iterdir()):
                    if image.suffix.lower() in _IMAGE_SUFFIXES:
                        name = f"{split}/{class_dir.name}/{image.name}"
                        members[name] = _read_file(path, name)
        return _from_images(members, path, lambda name: _in_folder(path, name))
    raise _layout_error(path)


def _read_archive(path: Path) -> CIFAR10:
    """Pickled batches at the archive's root or directly under its single top folder, else images."""
    members = _read_tar(path)
    prefix = _pickle_prefix(list(members))
    if prefix is not None:
        names = [name for name in (*_PICKLE_BATCHES, _PICKLE_META) if prefix + name in members]
        return _from_pickles(
            {name: members[prefix + name] for name in names},
            {name: _in_archive(path, prefix + name) for name in names}, str(path),
        )
    top = _strip_common_root(list(members))
    images = {name[len(top) :]: blob for name, blob in members.items() if name.startswith(top)}
    return _from_images(images, path, lambda name: _in_archive(path, top + name))


def _member_name(name: str) -> str:
    """A tar member's name without leading ``/`` and ``./``."""
    name = name.lstrip("/")
    while name.startswith("./"):
        name = name[2:].lstrip("/")
    return name


def _read_tar(path: Path) -> dict[str, bytes]:
    """All regular files of a (gzipped) tar, by name; decompressed in memory first (faster than streaming).

    Nothing is extracted to disk and no member is interpreted here.

    Raises:
        ValueError: naming the archive (and the member where one is cut short) when the file is not
            a gzip or tar archive, or is truncated or damaged.
    """
    where = f"archive {str(path)!r}"
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{where} cannot be read ({_brief(error)})") from error
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except EOFError:
            raise ValueError(
                f"{where} is truncated: its gzip stream ends early{_where_cut(_gunzip_prefix(raw))} "
                "(an interrupted download or copy?)"
            ) from None
        except (OSError, zlib.error) as error:
            raise ValueError(f"{where} is not a readable gzip file ({_brief(error)})") from error
    members: dict[str, bytes] = {}
    last, end = None, 0
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as archive:
            for member in archive:
                if member.isfile():
                    blob = raw[member.offset_data : member.offset_data + member.size]
                    if len(blob) != member.size:
                        raise ValueError(
                            f"{_in_archive(path, member.name)} is truncated: the archive holds {len(blob)} "
                            f"of its {member.size} bytes"
                        )
                    members[_member_name(member.name)] = blob
                last, end = member.name, member.offset_data + -(-member.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    except (tarfile.TarError, EOFError) as error:
        after = f" after member {last!r}" if last is not None else ""
        raise ValueError(f"{where} is not a readable tar archive{after} ({_brief(error)})") from error
    rest = raw[end : end + tarfile.BLOCKSIZE]
    if last is not None and (len(rest) < tarfile.BLOCKSIZE or rest.count(0) != len(rest)):
        # tarfile stops silently at a damaged or cut-off header after the first member
        problem = "ends without the end-of-archive marker" if not rest else "has a damaged or cut-off header"
        raise ValueError(f"{where} {problem} after member {last!r} (truncated or damaged?)")
    return members


def _gunzip_prefix(raw: bytes) -> bytes:
    """As much of a cut-off gzip stream as can be decompressed."""
    try:
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS).decompress(raw)
    except zlib.error:
        return b""


def _where_cut(data: bytes) -> str:
    """Where a cut-off tar stream ends: ``", inside member 'x' (...)"``, ``", after member 'x'"`` or ``""``."""
    last = None
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for member in archive:
                if member.offset_data + member.size > len(data):
                    present = max(len(data) - member.offset_data, 0)
                    return f", inside member {member.name!r} ({present} of its {member.size} bytes present)"
                last = member.name
    except (tarfile.TarError, EOFError):
        pass
    return f", after member {last!r}" if last is not None else ""


def _pickle_prefix(names: Sequence[str]) -> str | None:
    """Where an archive holds torchvision's pickled batches: ``""`` (its root), ``"<top>/"`` (directly
    under its single top folder, as ``cifar-10-batches-py/`` in torchvision's tarball), or None.

    Files named like batches anywhere else (e.g. deep inside an image-folder archive) are never read.
    """
    present = set(names)
    candidates = [""]
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) == 1 and all("/" in name for name in names):
        candidates.append(f"{tops.pop()}/")
    for prefix in candidates:
        if all(prefix + name in present for name in _PICKLE_BATCHES):
            return prefix
    return None


def _strip_common_root(names: Sequence[str]) -> str:
    """The single top folder all names share (e.g. ``cifar10-jpeg/``), or ``""``."""
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) == 1 and all("/" in name for name in names):
        top = tops.pop()
        if top not in ("train", "test"):
            return top + "/"
    return ""


def _from_images(members: dict[str, bytes], path: Path, describe: Callable[[str], str]) -> CIFAR10:
    """Images from ``{"train|test/<class>/<image>": bytes}`` (other names are ignored).

    ``describe(name)`` says where a member is, for error messages.
    """
    splits: dict[str, dict[str, list[tuple[str, bytes]]]] = {"train": {}, "test": {}}
    for name, blob in members.items():
        parts = name.split("/")
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
    images = _decode_images(blobs, names_in_order, describe)  # both splits in one go: one round of worker start-up
    train_count = len(labels["train"])
    return CIFAR10(
        images[:train_count], np.asarray(labels["train"], dtype=np.int64),
        images[train_count:], np.asarray(labels["test"], dtype=np.int64), classes=classes, source=str(path),
    )


# ----------------------------------------------------------------------------------------------
# Pickled batches, through a restricted unpickler
# ----------------------------------------------------------------------------------------------


def _latin1_bytes(text: str = "", encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 uses it to pickle ``bytes`` at protocol 2, limited to latin-1."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode is allowed only as latin-1 text to bytes, got {encoding!r}")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """What a CIFAR-10 batch may ask the unpickler for, by (module, name) as written in the pickle.

    Plain dicts, lists, tuples, strings, bytes and numbers need no global at all. A numpy array needs
    ``numpy.ndarray``, ``numpy.dtype`` and numpy's own reconstruction function (``_reconstruct`` up
    to protocol 4, ``_frombuffer`` at protocol 5, ``scalar`` for numpy numbers such as labels), under
    numpy 1's module names (``numpy.core.*``, also in the official Python 2 batches) or numpy 2's
    (``numpy._core.*``). The functions are taken from numpy's own pickles, so they are the ones
    this numpy uses. Python 3 pickles ``bytes`` at protocol 2 as ``_codecs.encode(text, 'latin1')``.
    """
    reconstruct = np.zeros(1, np.uint8).__reduce__()[0]
    frombuffer = np.zeros(1, np.uint8).__reduce_ex__(5)[0]
    scalar = np.uint8(0).__reduce__()[0]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): _latin1_bytes,
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return allowed


_PICKLE_GLOBALS = _allowed_globals()


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global that a CIFAR-10 batch never needs."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualified_name = f"{module}.{name}"


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain data and numpy arrays (see :func:`_allowed_globals`).

    Any other global (``os.system``, ``builtins.exec``, ``subprocess.Popen``, another numpy function)
    is refused before it is looked up, so a crafted pickle cannot call it; persistent ids are refused too.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _PICKLE_GLOBALS[(module, name)]
        except KeyError:
            raise _RefusedGlobal(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def _unpickle_dict(blob: bytes, place: str) -> dict[str, Any]:
    """Unpickle one batch (or ``batches.meta``) safely; its keys as ``str`` (Python 2 pickles give either)."""
    try:
        # latin1: the official batches were pickled by Python 2, whose byte strings hold the pixel data
        entry = _BatchUnpickler(io.BytesIO(blob), encoding="latin1").load()
    except _RefusedGlobal as refused:
        raise ValueError(
            f"{place}: refused to unpickle it: it asks for {refused.qualified_name}, but a CIFAR-10 batch holds "
            "only dicts, lists, strings, numbers and numpy arrays (a crafted pickle could run code)"
        ) from None
    except Exception as error:  # noqa: BLE001 - whatever a damaged pickle raises, it is not a batch
        raise ValueError(f"{place}: not a readable pickled CIFAR-10 batch ({_brief(error)})") from error
    if not isinstance(entry, dict):
        raise ValueError(f"{place}: a pickled CIFAR-10 batch must be a dict, got {type(entry).__name__}")
    return {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in entry.items()}


def _read_meta(blob: bytes, place: str) -> tuple[str, ...]:
    """The class names of ``batches.meta``."""
    names = _unpickle_dict(blob, place).get("label_names")
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, (str, bytes)) for n in names):
        raise ValueError(f"{place}: 'label_names' must be a non-empty list of class names, got {names!r:.80}")
    return tuple(n.decode("latin1") if isinstance(n, bytes) else n for n in names)


def _as_integers(value: Any) -> np.ndarray | None:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError):  # ragged or otherwise not an array
        return None
    return array if array.dtype.kind in "iu" else None


def _read_batch(blob: bytes, place: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 32, 32, 3)`` and labels ``(N,)`` of one batch: ``data`` holds N rows of 3072 bytes (CHW)."""
    entry = _unpickle_dict(blob, place)
    if "data" not in entry:
        raise ValueError(f"{place}: the batch has no 'data' (keys: {', '.join(map(str, entry)) or 'none'})")
    rows = _as_integers(entry["data"])
    if rows is None:
        value = entry["data"]
        got = f"an array of {value.dtype}" if isinstance(value, np.ndarray) else f"a {type(value).__name__}"
        raise ValueError(f"{place}: 'data' must hold whole-number pixel values (uint8), got {got}")
    if rows.ndim != 2 or rows.shape[1] != 3072:
        raise ValueError(
            f"{place}: 'data' must be N x 3072 pixel values (N images of 3 x 32 x 32), got shape {rows.shape}"
        )
    if rows.dtype != np.uint8:
        if rows.size and (rows.min() < 0 or rows.max() > 255):
            raise ValueError(f"{place}: 'data' must hold pixel values 0 .. 255, found {rows.min()} .. {rows.max()}")
        rows = rows.astype(np.uint8)
    key = "labels" if "labels" in entry else "fine_labels"
    if key not in entry:
        raise ValueError(f"{place}: the batch has no 'labels' (keys: {', '.join(map(str, entry))})")
    labels = _as_integers(entry[key])
    if labels is None or labels.ndim != 1:
        raise ValueError(f"{place}: {key!r} must be a list of whole-number class indices")
    if len(labels) != len(rows):
        raise ValueError(f"{place}: {len(labels)} labels for {len(rows)} images in 'data'")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise ValueError(f"{place}: labels must lie in 0 .. {num_classes - 1}, found {bad}")
    images = rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def _from_pickles(files: dict[str, bytes], places: dict[str, str], source: str) -> CIFAR10:
    """torchvision's / the official ``cifar-10-batches-py`` pickles (rows of 3072 bytes, CHW).

    Args:
        files: the bytes of ``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and, optionally,
            ``batches.meta``, by those names.
        places: where each file is (``"archive '...', member '...'"``), for error messages.
        source: the location, for the result's ``source``.
    """
    classes = CIFAR10_CLASSES
    if _PICKLE_META in files:
        classes = _read_meta(files[_PICKLE_META], places[_PICKLE_META])
    train = [_read_batch(files[name], places[name], len(classes)) for name in _PICKLE_TRAIN]
    test_images, test_labels = _read_batch(files[_PICKLE_TEST], places[_PICKLE_TEST], len(classes))
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

    Raises ``ValueError(index, problem)`` for the first image that is not a readable 32 x 32 image:
    its chunk-relative index and what is wrong with it.
    """
    from PIL import Image  # noqa: PLC0415 - keeps the module importable without Pillow

    out = np.empty((len(blobs), 32, 32, 3), dtype=np.uint8)
    for index, blob in enumerate(blobs):
        try:
            with Image.open(io.BytesIO(blob)) as image:
                if image.size == (32, 32):
                    out[index] = np.asarray(image.convert("RGB"))  # decodes: a truncated file fails here
                    continue
                problem = f"is {image.size[0]}x{image.size[1]}, expected 32x32"
        except Exception as error:  # noqa: BLE001 - whatever Pillow raises, the file is not a readable image
            message = " ".join(str(error).split(" <_io.BytesIO")[0].split())  # Pillow names the buffer: noise
            problem = f"is not a readable image ({type(error).__name__}: {message})"
        raise ValueError(index, problem)
    return out


class _UnreadableImage(Exception):
    """Image ``index`` (of the whole list being decoded) is not a readable 32 x 32 image: ``problem``."""

    def __init__(self, index: int, problem: str) -> None:
        super().__init__(index, problem)
        self.index, self.problem = index, problem


def _decode_here(blobs: list[bytes], start: int) -> np.ndarray:
    try:
        return _decode_chunk(blobs)
    except ValueError as error:
        if len(error.args) != 2:
            raise
        index, problem = error.args
        raise _UnreadableImage(start + index, problem) from None


def _decode_in_subprocess(blobs: list[bytes], start: int) -> np.ndarray:
    """Run :func:`_decode_chunk` on ``blobs`` in a fresh ``python`` that imports only numpy and Pillow.

    A plain subprocess (not multiprocessing) so that nothing depends on how the caller's program is
    written: spawn-based pools re-import the caller's ``__main__`` (and fail in scripts without an
    ``if __name__ == "__main__"`` guard), and fork is unsafe in a process that holds torch's threads.
    An unreadable image is reported back as a JSON line ``[index, problem]`` and exit status 3.
    """
    driver = (
        "import io, json, pickle, sys\nimport numpy as np\n"
        + inspect.getsource(_decode_chunk)
        + "\ntry:\n    out = _decode_chunk(pickle.load(sys.stdin.buffer))\n"
        "except ValueError as error:\n    sys.stderr.write('\\n' + json.dumps(list(error.args)) + '\\n')\n"
        "    sys.exit(3)\nsys.stdout.buffer.write(out.tobytes())\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", driver], input=pickle.dumps(blobs, protocol=pickle.HIGHEST_PROTOCOL),
        capture_output=True, check=False,
    )
    lines = completed.stderr.decode(errors="replace").strip().splitlines() or ["no message"]
    if completed.returncode == 3:
        try:
            index, problem = json.loads(lines[-1])
        except ValueError:
            pass
        else:
            raise _UnreadableImage(start + index, problem)
    if completed.returncode != 0:
        raise RuntimeError(f"the decoding worker failed with exit status {completed.returncode}: {lines[-1]}")
    return np.frombuffer(completed.stdout, dtype=np.uint8).reshape(len(blobs), 32, 32, 3)


def _decode_images(blobs: list[bytes], names: list[str], describe: Callable[[str], str] | None = None) -> np.ndarray:
    """Decode all images: in-process for small sets, else one worker process per available core.

    Raises:
        ValueError: ``"<describe(name)> <problem>"`` for the first image that is not a readable
            32 x 32 image (``describe`` defaults to the name itself), e.g. ``"archive '...', member
            'train/cat/0001.jpg' is not a readable image (OSError: image file is truncated)"``.
    """
    if not blobs:
        return np.empty((0, 32, 32, 3), dtype=np.uint8)
    describe = describe or str
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = min(cores, 32, len(blobs))
    bounds = np.linspace(0, len(blobs), workers + 1).astype(int)
    try:
        if workers > 1 and len(blobs) >= _PARALLEL_DECODE_MIN:
            try:
                with concurrent.futures.ThreadPoolExecutor(workers) as pool:  # threads only wait on the processes
                    chunks = [(blobs[a:b], int(a)) for a, b in zip(bounds[:-1], bounds[1:])]
                    return np.concatenate(list(pool.map(lambda chunk: _decode_in_subprocess(*chunk), chunks)))
            except OSError:  # no usable sys.executable (embedded Python): decode here instead
                pass
            except RuntimeError as error:
                first, last = describe(names[0]), names[-1]
                raise ValueError(f"cannot decode the {len(blobs)} images {first} .. {last}: {error}") from error
        return _decode_here(blobs, 0)
    except _UnreadableImage as bad:
        raise ValueError(f"{describe(names[bad.index])} {bad.problem}") from None


# ----------------------------------------------------------------------------------------------
# The synthetic stand-in
# ----------------------------------------------------------------------------------------------


def make_synthetic_cifar10(train_size: int = 50_000, test_size: int = 10_000, *, seed: int = 0) -> CIFAR10:
    """A deterministic, learnable 10-class stand-in with CIFAR-10's shapes and dtypes.

    Class ``k`` is a grating (stripes) at ``18 k`` degrees (+- 4 degrees of jitter) with a period of
    ``16 / (1 + k % 3)`` pixels, in a class colour over a background of another class colour, with a
    random phase, a random brightness (x 0.75 .. 1.25) and Gaussian pixel noise (sigma 24 in 0-255 pixel units). Labels are balanced and interleaved.
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
            the training set, no scaling, so inputs stay in raw 0-255 RGB pixel units (about -128 .. 128). The Caffe
            net's initialisation (conv1 std 1e-4) assumes this scale.
        ``"channel_mean"``: subtract the per-channel mean, no scaling.
        ``"standard"``: :math:`(x / 255 - \mu_c) / \sigma_c` with per-channel mean and std, the usual
            choice for modern nets.

    Attributes:
        mode: one of :data:`NORMALIZATIONS`.
        mean: float32, ``(3, 32, 32)`` for ``mean_image`` or ``(3, 1, 1)``, in 0-255 pixel units.
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
