"""book/lite/assemble_pyodide.py: the Pyodide the site ships takes only files the official lock vouches for."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("assemble_pyodide", ROOT / "book" / "lite" / "assemble_pyodide.py")
assemble_pyodide = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(assemble_pyodide)

FILES = {"alpha-1.0-py3-none-any.whl": b"alpha", "beta_pkg-2.0-py3-none-any.whl": b"beta",
         "gamma-3.0-py3-none-any.whl": b"gamma", "unrelated-1.0-py3-none-any.whl": b"other"}


def _lock(version: str) -> dict:
    def entry(file_name: str, depends: list[str]) -> dict:
        return {"file_name": file_name, "depends": depends, "sha256": hashlib.sha256(FILES[file_name]).hexdigest()}

    return {"info": {"version": version}, "packages": {
        "alpha": entry("alpha-1.0-py3-none-any.whl", ["Beta_Pkg"]),  # a dependency spelled another way
        "beta-pkg": entry("beta_pkg-2.0-py3-none-any.whl", []),
        "gamma": entry("gamma-3.0-py3-none-any.whl", ["alpha"]),
        "unrelated": entry("unrelated-1.0-py3-none-any.whl", []),
    }}


def _npm_tarball(path: Path, version: str = assemble_pyodide.PYODIDE_VERSION) -> Path:
    members = {"package/package.json": json.dumps({"version": version}).encode(),
               "package/pyodide-lock.json": json.dumps(_lock(version)).encode()}
    members.update({f"package/{name}": name.encode() for name in assemble_pyodide.CORE_FILES if name != "package.json"})
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _bundle(path: Path, tampered: str | None = None, leave_out: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in FILES.items():
            if name != leave_out:
                archive.writestr(f"carrier/assets/pyodide/{name}", b"tampered" if name == tampered else data)
    return path


@pytest.fixture
def sources(tmp_path, monkeypatch):
    monkeypatch.setattr(assemble_pyodide, "ROOTS", ("alpha",))
    return _npm_tarball(tmp_path / "pyodide.tgz"), tmp_path


def test_ships_the_roots_and_their_dependencies_only_with_a_lock_of_just_those(sources):
    tarball, tmp_path = sources
    out = tmp_path / "site" / "pyodide"
    names = assemble_pyodide.assemble(tarball, _bundle(tmp_path / "bundle.whl"), out)
    assert names == ["alpha", "beta-pkg"]
    assert (out / "alpha-1.0-py3-none-any.whl").read_bytes() == b"alpha"
    assert not (out / "gamma-3.0-py3-none-any.whl").exists() and not (out / "unrelated-1.0-py3-none-any.whl").exists()
    assert all((out / core).exists() for core in assemble_pyodide.CORE_FILES)
    shipped = json.loads((out / "pyodide-lock.json").read_text())
    assert sorted(shipped["packages"]) == names and shipped["info"] == _lock(assemble_pyodide.PYODIDE_VERSION)["info"]
    assert shipped["packages"]["alpha"] == _lock(assemble_pyodide.PYODIDE_VERSION)["packages"]["alpha"]


def test_refuses_a_file_whose_hash_differs_from_the_official_lock_and_keeps_the_previous_runtime(sources):
    tarball, tmp_path = sources
    out = tmp_path / "pyodide"
    out.mkdir()
    (out / "previous.txt").write_text("the runtime from the last good build")
    with pytest.raises(SystemExit, match=r"beta_pkg-2.0-py3-none-any.whl in bundle.whl does not match the official SHA-256"):
        assemble_pyodide.assemble(tarball, _bundle(tmp_path / "bundle.whl", tampered="beta_pkg-2.0-py3-none-any.whl"), out)
    assert [p.name for p in out.iterdir()] == ["previous.txt"]


def test_refuses_a_bundle_that_lacks_a_needed_file_or_a_tarball_of_another_release(sources):
    tarball, tmp_path = sources
    with pytest.raises(SystemExit, match=r"does not carry beta_pkg-2.0-py3-none-any.whl \(package beta-pkg\)"):
        assemble_pyodide.assemble(tarball, _bundle(tmp_path / "b.whl", leave_out="beta_pkg-2.0-py3-none-any.whl"),
                                  tmp_path / "out")
    other = _npm_tarball(tmp_path / "other.tgz", version="0.26.0")
    with pytest.raises(SystemExit, match=rf"holds Pyodide 0.26.0, expected {assemble_pyodide.PYODIDE_VERSION}"):
        assemble_pyodide.assemble(other, _bundle(tmp_path / "b2.whl"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_closure_follows_dependencies_by_normalised_name_and_names_an_unknown_package():
    lock = _lock("x")
    assert assemble_pyodide.closure(lock, ("gamma",)) == ["alpha", "beta-pkg", "gamma"]
    assert assemble_pyodide.normalize("Prompt_Toolkit") == assemble_pyodide.normalize("prompt-toolkit")
    with pytest.raises(SystemExit, match="package 'torch' is not in Pyodide"):
        assemble_pyodide.closure(lock, ("torch",))


def test_the_makefile_and_the_script_agree_on_the_release():
    makefile = (ROOT / "Makefile").read_text()
    assert f"PYODIDE_VERSION := {assemble_pyodide.PYODIDE_VERSION}\n" in makefile
