"""clr_book.cifar.data on hostile and damaged inputs: crafted pickles, cut-off archives, broken images, bad
batches, killed cache writes and sources rewritten behind the cache's back.

Every bad input raises ``ValueError`` whose message names the archive (or folder) and the member (or file).
"""

from __future__ import annotations

import builtins
import gzip
import io
import os
import pickle
import signal
import struct
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clr_book.cifar import data as data_module
from clr_book.cifar.data import CIFAR10_CLASSES, load_cifar10

ROOT = Path(__file__).resolve().parents[1]
BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
CLASSES = ("airplane", "cat", "dog")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No test sees the developer's CLR_CIFAR10, cache or network."""
    monkeypatch.delenv("CLR_CIFAR10", raising=False)
    monkeypatch.setenv("CLR_CACHE", str(tmp_path / "cache"))

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to download CIFAR-10")

    monkeypatch.setattr(data_module, "_try_download", no_network)


# ----------------------------------------------------------------------------------------------
# Builders
# ----------------------------------------------------------------------------------------------


def _encode(colour: tuple[int, int, int], fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buffer, format=fmt)
    return buffer.getvalue()


def _image_files(fmt: str = "PNG", suffix: str = ".png") -> dict[str, bytes]:
    """``train|test/<class>/<n><suffix>``: 2 train and 1 test image per class, each a flat colour."""
    return {
        f"{split}/{name}/{index}{suffix}": _encode((40 * k, 30 + 40 * index, 200 if split == "train" else 100), fmt)
        for split, count in (("train", 2), ("test", 1)) for k, name in enumerate(CLASSES) for index in range(count)
    }


def _batch(count: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
            "labels": [int(v) for v in rng.integers(0, 10, count)], "batch_label": "a batch"}


def _batch_files(prefix: str = "cifar-10-batches-py/", **replace: bytes) -> dict[str, bytes]:
    """torchvision's pickled batches (2 images each) under ``prefix``; ``replace`` swaps a file's bytes."""
    files = {name: pickle.dumps(_batch(2, seed)) for seed, name in enumerate(BATCHES)}
    files["batches.meta"] = pickle.dumps({"label_names": list(CIFAR10_CLASSES)})
    files.update({name.replace("_meta", ".meta"): blob for name, blob in replace.items()})
    return {prefix + name: blob for name, blob in files.items()}


def _tar(path: Path, files: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as archive:
        for name, blob in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(blob), 1_600_000_000
            archive.addfile(info, io.BytesIO(blob))
    return path


def _folder(path: Path, files: dict[str, bytes]) -> Path:
    for name, blob in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(blob)
    return path


def _error(location: Path) -> str:
    """The message of the ValueError that loading ``location`` raises."""
    with pytest.raises(ValueError) as caught:
        load_cifar10(location, verbose=False)
    return str(caught.value)


def _names_archive(message: str, archive: Path, member: str | None = None) -> bool:
    named = f"archive {str(archive.resolve())!r}" in message
    return named and (member is None or f"member {member!r}" in message)


def _names_folder(message: str, folder: Path, name: str) -> bool:
    return f"folder {str(folder.resolve())!r}, file {name!r}" in message


class _Payload:
    """Pickles as a call of ``function(*args)``: what a crafted batch would run on load."""

    def __init__(self, function, *args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def _payloads(marker: Path) -> dict[str, _Payload]:
    from numpy.testing._private.utils import runstring  # a real numpy function that runs code

    code = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": _Payload(os.system, f"touch '{marker}'"),
        "builtins.exec": _Payload(builtins.exec, code),
        "builtins.eval": _Payload(builtins.eval, f"{code} or 0"),
        "subprocess.call": _Payload(subprocess.call, [sys.executable, "-c", code]),
        "numpy runstring": _Payload(runstring, code, {}),
    }


# ----------------------------------------------------------------------------------------------
# 1. Crafted pickles never run
# ----------------------------------------------------------------------------------------------


PAYLOADS = ["os.system", "builtins.exec", "builtins.eval", "subprocess.call", "numpy runstring"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_batch_that_calls_code_is_refused_and_the_code_never_runs(tmp_path, payload):
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_payloads(marker)[payload])
    archive = _tar(tmp_path / "evil.tar.gz", _batch_files(data_batch_3=evil))
    message = _error(archive)
    assert _names_archive(message, archive, "cifar-10-batches-py/data_batch_3")
    assert "refused to unpickle" in message
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 1, 2, 4, 5])
def test_refusal_holds_at_every_pickle_protocol(tmp_path, protocol):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"data": _payloads(marker)["os.system"], "labels": [0]}, protocol=protocol)
    archive = _tar(tmp_path / "evil.tar.gz", _batch_files(test_batch=evil))
    message = _error(archive)
    assert _names_archive(message, archive, "cifar-10-batches-py/test_batch") and "system" in message
    assert not marker.exists()


def test_a_crafted_batches_meta_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"label_names": _payloads(marker)["builtins.exec"]})
    archive = _tar(tmp_path / "evil.tar", _batch_files(batches_meta=evil), mode="w")
    message = _error(archive)
    assert _names_archive(message, archive, "cifar-10-batches-py/batches.meta") and "exec" in message
    assert not marker.exists()


def test_a_crafted_batch_in_a_folder_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    folder = _folder(tmp_path / "data", _batch_files(data_batch_5=pickle.dumps(_payloads(marker)["subprocess.call"])))
    message = _error(folder)
    assert _names_folder(message, folder, "cifar-10-batches-py/data_batch_5") and "subprocess" in message
    assert not marker.exists()


def test_a_pickle_with_a_persistent_id_is_refused(tmp_path):
    class WithPersistentId(pickle.Pickler):
        def persistent_id(self, obj):
            return "external" if isinstance(obj, str) and obj == "x" else None

    buffer = io.BytesIO()
    WithPersistentId(buffer).dump({"data": "x", "labels": []})
    archive = _tar(tmp_path / "odd.tar.gz", _batch_files(data_batch_1=buffer.getvalue()))
    message = _error(archive)
    assert _names_archive(message, archive, "cifar-10-batches-py/data_batch_1") and "persistent" in message


def test_batches_deep_inside_an_image_archive_are_never_unpickled(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_payloads(marker)["os.system"])
    files = {f"cifar10-jpeg/{name}": blob for name, blob in _image_files().items()}
    files.update({f"cifar10-jpeg/extra/cifar-10-batches-py/{name}": evil for name in BATCHES})
    files.update({f"cifar10-jpeg/train/cat/{name}": evil for name in BATCHES})

    def no_unpickling(*args, **kwargs):
        raise AssertionError("a batch outside the expected layout was unpickled")

    monkeypatch.setattr(data_module, "_unpickle_dict", no_unpickling)
    data = load_cifar10(_tar(tmp_path / "images.tar.gz", files), verbose=False)
    assert data.classes == CLASSES and len(data.train_labels) == 6
    assert not marker.exists()


def test_batches_two_folders_deep_are_not_a_layout(tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_payloads(marker)["os.system"])
    archive = _tar(tmp_path / "deep.tar.gz", {f"outer/cifar-10-batches-py/{name}": evil for name in BATCHES})
    assert "is not a CIFAR-10 source" in _error(archive)
    assert not marker.exists()


def test_batches_inside_an_image_folder_are_never_unpickled(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_payloads(marker)["os.system"])
    folder = _folder(tmp_path / "images", {**_image_files(), **{f"train/dog/{name}": evil for name in BATCHES}})
    monkeypatch.setattr(data_module, "_unpickle_dict", lambda *a: pytest.fail("unpickled a stray batch"))
    assert load_cifar10(folder, verbose=False).classes == CLASSES
    assert not marker.exists()


def _python2_pickle(batch: dict) -> bytes:
    """The bytes Python 2's ``cPickle.dump(batch, f, 2)`` writes for an official CIFAR-10 batch: str keys
    (Python 2 byte strings), a list of int labels, and numpy 1's reconstruction of a uint8 array."""

    def string(text: str | bytes) -> bytes:
        raw = text.encode("latin1") if isinstance(text, str) else text
        return b"T" + struct.pack("<i", len(raw)) + raw  # BINSTRING

    def integer(value: int) -> bytes:
        return b"J" + struct.pack("<i", value)  # BININT

    def value(item) -> bytes:
        if isinstance(item, np.ndarray):
            dtype = (b"cnumpy\ndtype\n" + string("u1") + b"K\x00K\x01\x87R" + b"(K\x03" + string("|") + b"NNN"
                     + integer(-1) + integer(-1) + b"K\x00tb")
            return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + string("b") + b"\x87R"
                    + b"(K\x01" + integer(item.shape[0]) + integer(item.shape[1]) + b"\x86" + dtype + b"\x89"
                    + string(item.tobytes()) + b"tb")
        if isinstance(item, list):
            return b"](" + b"".join(value(v) for v in item) + b"e"
        return integer(item) if isinstance(item, int) else string(item)

    return b"\x80\x02}(" + b"".join(string(k) + value(v) for k, v in batch.items()) + b"u."


def test_official_python2_batches_load_through_the_restricted_unpickler(tmp_path):
    batches = {name: {**_batch(2, seed), "filenames": ["a.png", "b.png"]} for seed, name in enumerate(BATCHES)}
    files = {f"cifar-10-batches-py/{name}": _python2_pickle(batch) for name, batch in batches.items()}
    files["cifar-10-batches-py/batches.meta"] = _python2_pickle({"label_names": list(CIFAR10_CLASSES), "num_vis": 3072})
    data = load_cifar10(_tar(tmp_path / "cifar-10-python.tar.gz", files), verbose=False)
    first = batches["data_batch_1"]
    np.testing.assert_array_equal(data.train_images[0], first["data"][0].reshape(3, 32, 32).transpose(1, 2, 0))
    assert list(data.train_labels[:2]) == first["labels"] and data.classes == CIFAR10_CLASSES
    np.testing.assert_array_equal(data.test_labels, batches["test_batch"]["labels"])


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_python3_batches_with_bytes_keys_and_numpy_labels_load(tmp_path, protocol):
    def batch(seed: int) -> dict:
        plain = _batch(2, seed)
        return {b"data": plain["data"], b"labels": [np.int64(v) for v in plain["labels"]]}

    files = {name: pickle.dumps(batch(seed), protocol=protocol) for seed, name in enumerate(BATCHES)}
    data = load_cifar10(_tar(tmp_path / "batches.tar", files, mode="w"), verbose=False)  # batches at the root
    assert data.train_images.shape == (10, 32, 32, 3) and list(data.test_labels) == _batch(2, 5)["labels"]


# ----------------------------------------------------------------------------------------------
# 2. Damaged archives
# ----------------------------------------------------------------------------------------------


def test_random_bytes_named_tar_gz_raise_naming_the_archive(tmp_path):
    archive = tmp_path / "noise.tar.gz"
    archive.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    message = _error(archive)
    assert _names_archive(message, archive) and "not a readable tar archive" in message


def test_an_empty_archive_file_raises_naming_the_archive(tmp_path):
    archive = tmp_path / "empty.tar.gz"
    archive.write_bytes(b"")
    assert _names_archive(_error(archive), archive)


def test_a_tar_gz_cut_in_half_raises_naming_the_archive_and_the_member(tmp_path):
    files = {f"train/cat/{i}.bmp": _encode((i, i, i), "BMP") for i in range(20)}  # 3 KB each: the cut lands in one
    archive = _tar(tmp_path / "cut.tar.gz", files)
    raw = archive.read_bytes()
    archive.write_bytes(raw[: len(raw) // 2])
    message = _error(archive)
    assert _names_archive(message, archive) and "truncated" in message
    assert "inside member 'train/cat/" in message or "after member 'train/cat/" in message


def test_a_gzip_of_non_tar_data_raises_naming_the_archive(tmp_path):
    archive = tmp_path / "text.tar.gz"
    archive.write_bytes(gzip.compress(b"this is a text file, not a tar archive\n" * 200))
    message = _error(archive)
    assert _names_archive(message, archive) and "not a readable tar archive" in message


def test_a_corrupted_gzip_stream_raises_naming_the_archive(tmp_path):
    archive = _tar(tmp_path / "flipped.tar.gz", _image_files())
    raw = bytearray(archive.read_bytes())
    for offset in range(len(raw) // 3, len(raw) // 3 + 40):
        raw[offset] ^= 0xFF
    archive.write_bytes(bytes(raw))
    message = _error(archive)
    assert _names_archive(message, archive) and ("gzip" in message or "tar" in message)


def test_an_uncompressed_tar_cut_inside_a_member_names_that_member(tmp_path):
    archive = _tar(tmp_path / "cut.tar", _image_files(), mode="w")
    raw = archive.read_bytes()
    with tarfile.open(archive) as tar:
        member = tar.getmembers()[4]
    archive.write_bytes(raw[: member.offset_data + member.size // 2])
    message = _error(archive)
    assert _names_archive(message, archive, member.name) and "truncated" in message


def test_an_uncompressed_tar_cut_between_members_names_the_last_member(tmp_path):
    archive = _tar(tmp_path / "cut.tar", _image_files(), mode="w")
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    archive.write_bytes(archive.read_bytes()[: members[5].offset + 100])  # inside member 5's header
    message = _error(archive)
    assert _names_archive(message, archive) and repr(members[4].name) in message


# ----------------------------------------------------------------------------------------------
# 2. Damaged images
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "half"])
def test_a_broken_jpeg_in_an_archive_names_the_archive_and_the_member(tmp_path, damage):
    files = {f"top/{name}": blob for name, blob in _image_files("JPEG", ".jpg").items()}
    good = files["top/train/dog/1.jpg"]
    files["top/train/dog/1.jpg"] = b"\xff\xd8 not really a JPEG" * 20 if damage == "garbage" else good[: len(good) // 2]
    archive = _tar(tmp_path / "images.tar.gz", files)
    message = _error(archive)
    assert _names_archive(message, archive, "top/train/dog/1.jpg") and "not a readable image" in message


@pytest.mark.parametrize("damage", ["garbage", "half"])
def test_a_broken_png_in_a_folder_names_the_folder_and_the_file(tmp_path, damage):
    files = _image_files()
    good = files["test/cat/0.png"]
    files["test/cat/0.png"] = os.urandom(300) if damage == "garbage" else good[: len(good) // 2]
    folder = _folder(tmp_path / "images", files)
    message = _error(folder)
    assert _names_folder(message, folder, "test/cat/0.png") and "not a readable image" in message


def test_worker_processes_name_the_broken_image_of_a_later_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "_PARALLEL_DECODE_MIN", 1)
    monkeypatch.setattr(data_module.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    files = _image_files()
    files["test/dog/0.png"] = b"garbage"  # the last image: in the second worker's chunk
    archive = _tar(tmp_path / "images.tar.gz", files)
    message = _error(archive)
    assert _names_archive(message, archive, "test/dog/0.png") and "not a readable image" in message


def test_a_wrongly_sized_image_names_the_archive_and_the_member(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40)).save(buffer, format="PNG")
    archive = _tar(tmp_path / "images.tar.gz", {**_image_files(), "train/cat/1.png": buffer.getvalue()})
    message = _error(archive)
    assert _names_archive(message, archive, "train/cat/1.png") and "40x40, expected 32x32" in message


# ----------------------------------------------------------------------------------------------
# 2. Damaged batches
# ----------------------------------------------------------------------------------------------

_GOOD = _batch(2)
BAD_BATCHES = {
    "no data": (pickle.dumps({"labels": [1, 2]}), "has no 'data'"),
    "no labels": (pickle.dumps({"data": _GOOD["data"]}), "has no 'labels'"),
    "rows of 3000": (pickle.dumps({**_GOOD, "data": np.zeros((2, 3000), np.uint8)}), "N x 3072"),
    "images not flattened": (pickle.dumps({**_GOOD, "data": np.zeros((2, 3, 32, 32), np.uint8)}), "N x 3072"),
    "float pixels": (pickle.dumps({**_GOOD, "data": np.zeros((2, 3072), np.float32)}), "got an array of float32"),
    "pixels above 255": (pickle.dumps({**_GOOD, "data": np.full((2, 3072), 300)}), "0 .. 255"),
    "too few labels": (pickle.dumps({**_GOOD, "labels": [1]}), "1 labels for 2 images"),
    "label 10": (pickle.dumps({**_GOOD, "labels": [3, 10]}), "0 .. 9, found 10"),
    "label -1": (pickle.dumps({**_GOOD, "labels": [-1, 3]}), "0 .. 9, found -1"),
    "labels as text": (pickle.dumps({**_GOOD, "labels": ["cat", "dog"]}), "whole-number class indices"),
    "not a dict": (pickle.dumps([_GOOD["data"], _GOOD["labels"]]), "must be a dict, got list"),
    "not a pickle": (b"GIF89a this is not a pickle at all", "not a readable pickled"),
    "truncated pickle": (pickle.dumps(_GOOD)[:3000], "not a readable pickled"),
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_a_bad_batch_names_the_archive_the_member_and_the_problem(tmp_path, case):
    blob, problem = BAD_BATCHES[case]
    archive = _tar(tmp_path / "cifar-10-python.tar.gz", _batch_files(data_batch_2=blob))
    message = _error(archive)
    assert _names_archive(message, archive, "cifar-10-batches-py/data_batch_2") and problem in message


def test_a_bad_batch_in_a_folder_names_the_folder_and_the_file(tmp_path):
    folder = _folder(tmp_path / "cifar-10-batches-py", _batch_files("", test_batch=BAD_BATCHES["label 10"][0]))
    message = _error(folder)
    assert _names_folder(message, folder, "test_batch") and "found 10" in message


def test_labels_must_fit_the_class_names_of_batches_meta(tmp_path):
    meta = pickle.dumps({"label_names": ["only", "three", "names"]})
    archive = _tar(tmp_path / "cifar-10-python.tar.gz", _batch_files(batches_meta=meta, **{
        name: pickle.dumps({**_batch(2), "labels": [0, 7]}) for name in BATCHES}))
    assert _names_archive(_error(archive), archive, "cifar-10-batches-py/data_batch_1")


def test_a_batches_meta_without_label_names_names_the_member(tmp_path):
    archive = _tar(tmp_path / "cifar-10-python.tar.gz", _batch_files(batches_meta=pickle.dumps({"num_vis": 3072})))
    message = _error(archive)
    assert _names_archive(message, archive, "cifar-10-batches-py/batches.meta") and "label_names" in message


def test_a_damaged_archive_is_one_line_and_exit_status_2_in_the_cli(tmp_path, capsys):
    from clr_book.experiments.common import run_cli

    archive = tmp_path / "noise.tar.gz"
    archive.write_bytes(b"\x1f\x8b" + os.urandom(2000))
    status = run_cli("prog", lambda argv: load_cifar10(archive, verbose=False), [])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith("prog: error: archive ")


# ----------------------------------------------------------------------------------------------
# 2. The cache: atomic writes, damaged cache files, rewritten sources
# ----------------------------------------------------------------------------------------------


def _cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def _partials(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if "partial" in p.name)


def test_a_killed_cache_write_leaves_a_temporary_file_that_the_next_load_removes(tmp_path):
    folder = _folder(tmp_path / "images", _image_files())
    script = (
        "import os, signal, sys\nimport numpy as np\nfrom clr_book.cifar.data import load_cifar10\n"
        "def killed(handle, **arrays):\n    handle.write(b'PK half a cache file' * 1000); handle.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "np.savez = killed\nload_cifar10(sys.argv[1], verbose=False)\n"
    )
    env = {**os.environ, "CLR_CACHE": str(_cache(tmp_path))}
    completed = subprocess.run([sys.executable, "-c", script, str(folder)], cwd=ROOT, env=env, check=False)
    assert completed.returncode == -signal.SIGKILL
    assert len(_partials(_cache(tmp_path))) == 1 and not list(_cache(tmp_path).glob("cifar10-*.npz"))
    data = load_cifar10(folder, verbose=False)
    assert _partials(_cache(tmp_path)) == [] and len(list(_cache(tmp_path).glob("cifar10-*.npz"))) == 1
    assert len(data.train_labels) == 6


def test_an_interrupted_cache_write_removes_its_temporary_file(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "images", _image_files())

    def interrupted(handle, **arrays):
        handle.write(b"PK partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(data_module.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_cifar10(folder, verbose=False)
    assert list(_cache(tmp_path).iterdir()) == []


def test_stale_temporary_files_go_and_those_of_running_writers_stay(tmp_path):
    cache = _cache(tmp_path)
    cache.mkdir()
    host = data_module._HOST
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    names = {
        "dead writer": f".cifar10-aaaa.{host}.{int(dead.stdout)}.x1.partial",
        "running writer": f".cifar10-aaaa.{host}.{os.getpid()}.x2.partial",
        "other host, recent": ".cifar10-aaaa.elsewhere.1.x3.partial",
        "other host, old": ".cifar10-aaaa.elsewhere.1.x4.partial",
        "old scheme, old": "cifar10-aaaa.123.partial.npz",
        "old scheme, recent": "cifar10-bbbb.124.partial.npz",
    }
    for label, name in names.items():
        (cache / name).write_bytes(b"partial")
        if label.endswith(", old"):
            old = time.time() - 2 * 3600
            os.utime(cache / name, (old, old))
    load_cifar10(_folder(tmp_path / "images", _image_files()), verbose=False)
    kept = [label for label, name in names.items() if (cache / name).exists()]
    assert kept == ["running writer", "other host, recent", "old scheme, recent"]


@pytest.mark.parametrize("damage", ["garbage", "first half", "missing arrays"])
def test_a_damaged_cache_file_is_deleted_and_rebuilt(tmp_path, damage):
    folder = _folder(tmp_path / "images", _image_files())
    first = load_cifar10(folder, verbose=False)
    (cache_file,) = _cache(tmp_path).glob("cifar10-*.npz")
    raw = cache_file.read_bytes()
    if damage == "garbage":
        cache_file.write_bytes(os.urandom(len(raw)))
    elif damage == "first half":
        cache_file.write_bytes(raw[: len(raw) // 2])
    else:
        np.savez(cache_file, train_images=first.train_images)
    again = load_cifar10(folder, verbose=False)
    np.testing.assert_array_equal(again.train_images, first.train_images)
    with np.load(cache_file) as rebuilt:
        assert sorted(rebuilt) == ["classes", "test_images", "test_labels", "train_images", "train_labels"]
        np.testing.assert_array_equal(rebuilt["test_images"], first.test_images)
    assert _partials(_cache(tmp_path)) == []


def _rewrite_keeping_size_and_mtime(path: Path, blob: bytes) -> None:
    stat = path.stat()
    assert len(blob) == stat.st_size
    time.sleep(0.01)  # past the clock tick of the first write on coarse-grained filesystems
    path.write_bytes(blob)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns


def test_an_archive_rewritten_with_the_same_size_and_mtime_is_decoded_again(tmp_path):
    files = _image_files("PPM", ".ppm")  # uncompressed images: the same size whatever the colour
    archive = _tar(tmp_path / "images.tar", files, mode="w")
    before = load_cifar10(archive, verbose=False)
    files["train/cat/0.ppm"] = _encode((1, 2, 3), "PPM")
    _rewrite_keeping_size_and_mtime(archive, _tar(tmp_path / "new.tar", files, mode="w").read_bytes())
    after = load_cifar10(archive, verbose=False)
    assert not np.array_equal(before.train_images, after.train_images)
    assert (after.train_images[:, 0, 0] == (1, 2, 3)).all(axis=1).sum() == 1


def test_an_image_rewritten_with_the_same_size_and_mtime_is_decoded_again(tmp_path):
    folder = _folder(tmp_path / "images", _image_files("PPM", ".ppm"))
    before = load_cifar10(folder, verbose=False)
    _rewrite_keeping_size_and_mtime(folder / "test/dog/0.ppm", _encode((9, 8, 7), "PPM"))
    after = load_cifar10(folder, verbose=False)
    assert tuple(after.test_images[-1, 0, 0]) == (9, 8, 7) != tuple(before.test_images[-1, 0, 0])


def test_a_batch_rewritten_with_the_same_size_and_mtime_is_read_again(tmp_path):
    folder = _folder(tmp_path / "cifar-10-batches-py", _batch_files(""))
    before = load_cifar10(folder, verbose=False)
    batch = pickle.loads((folder / "test_batch").read_bytes())
    batch["data"] = 255 - batch["data"]
    _rewrite_keeping_size_and_mtime(folder / "test_batch", pickle.dumps(batch))
    after = load_cifar10(folder, verbose=False)
    np.testing.assert_array_equal(after.test_images, 255 - before.test_images)


def test_a_moved_archive_still_finds_its_cache(tmp_path, monkeypatch):
    archive = _tar(tmp_path / "images.tar.gz", _image_files())
    first = load_cifar10(archive, verbose=False)
    moved = archive.rename(tmp_path / "moved.tar.gz")
    monkeypatch.setattr(data_module, "_read_location", lambda path: pytest.fail("decoded although cached"))
    again = load_cifar10(moved, verbose=False)
    np.testing.assert_array_equal(again.train_images, first.train_images)
    assert again.source == str(moved.resolve())
