"""The committed results files are found in a clone and in an installed wheel (Colab's path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from clr_book import results

REPO = Path(__file__).resolve().parents[1]
COMMITTED = sorted(p.relative_to(REPO / "clr_book" / "results").as_posix()
                   for p in (REPO / "clr_book" / "results").glob("*/*.json"))


def test_there_are_committed_results_to_find():
    assert {"range_test/range-test-linear-full-seed0.json", "range_test/range-test-exp-full-seed0.json"} <= set(COMMITTED)


def test_a_clone_reads_the_files_in_its_checkout():
    for name in COMMITTED:
        experiment, file_name = name.split("/")
        path = results.folder(experiment) / file_name
        assert path == REPO / "clr_book" / "results" / name
        assert json.loads(path.read_text())["provenance"]["commit"]


def test_every_experiment_has_a_folder_name_and_unknown_ones_are_refused():
    assert [results.folder(name).name for name in results.EXPERIMENTS] == list(results.EXPERIMENTS)
    with pytest.raises(ValueError, match=r"experiment must be one of .*'table1'.*got 'table_1'"):
        results.folder("table_1")


def test_an_installed_wheel_ships_every_results_file(tmp_path):
    """What `pip install git+<repo>` gives a Colab runtime: the wheel, without the repository."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path / "wheel"), str(REPO)], check=True, cwd=tmp_path)
    wheel, = (tmp_path / "wheel").glob("clr_lib-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(n.removeprefix("clr_book/results/") for n in archive.namelist()
                         if n.startswith("clr_book/results/") and n.endswith(".json"))
        assert shipped == COMMITTED
        archive.extractall(tmp_path / "site")
    script = ("import json, sys; from clr_book import results; "
              "print(json.dumps({e: sorted(p.name for p in results.folder(e).glob('*.json')) "
              "for e in results.EXPERIMENTS if results.folder(e).is_dir()}))")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    found = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True,
                           cwd=tmp_path, env=env).stdout
    listed = json.loads(found)
    assert sorted(f"{e}/{n}" for e, names in listed.items() for n in names) == COMMITTED
    location = subprocess.run([sys.executable, "-c", "from clr_book import results; print(results.folder('table1'))"],
                              check=True, capture_output=True, text=True, cwd=tmp_path, env=env).stdout.strip()
    assert Path(location).is_relative_to(tmp_path / "site")
