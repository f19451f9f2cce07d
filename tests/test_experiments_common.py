"""Shared results-file and profile helpers of the experiments (clr_lib.experiments.records)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from clr_lib.experiments.records import choose_profile, read_records, write_record

PROFILES = {"full": "F", "quick": "Q", "smoke": "S"}


def test_auto_profile_is_full_on_cuda_and_quick_elsewhere():
    assert choose_profile("auto", PROFILES, "cuda") == "F"
    assert choose_profile("auto", PROFILES, "cpu") == "Q"
    assert choose_profile("smoke", PROFILES, "cuda") == "S"


def test_unknown_profile_names_the_parameter_and_the_choices():
    with pytest.raises(ValueError, match="profile must be 'auto' or one of 'full', 'quick', 'smoke', got 'huge'"):
        choose_profile("huge", PROFILES, "cpu")


def test_write_record_creates_folders_replaces_the_file_and_leaves_no_partial(tmp_path):
    path = tmp_path / "a" / "b" / "run.json"
    assert write_record({"schema": "s", "x": 1}, path) == path
    write_record({"schema": "s", "x": 2}, path)
    assert json.loads(path.read_text()) == {"schema": "s", "x": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.json"]


def test_strict_write_refuses_nan_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "run.json"
    write_record({"x": 1.0}, path, strict=True)
    with pytest.raises(ValueError):
        write_record({"x": math.nan}, path, strict=True)
    assert json.loads(path.read_text()) == {"x": 1.0}
    write_record({"x": math.nan}, path)  # not strict: Python's NaN spelling
    assert math.isnan(json.loads(path.read_text())["x"])


def test_read_records_keeps_only_this_schema_in_file_name_order(tmp_path):
    write_record({"schema": "mine", "k": 2}, tmp_path / "b.json")
    write_record({"schema": "mine", "k": 1}, tmp_path / "a.json")
    write_record({"schema": "other", "k": 3}, tmp_path / "c.json")
    (tmp_path / "d.json").write_text("not json")
    (tmp_path / "e.json").write_text("[1, 2]")
    records = read_records(tmp_path, "mine", ["k"])
    assert [r["k"] for r in records] == [1, 2]
    assert records[0]["path"] == str(tmp_path / "a.json")


def test_read_records_raises_for_an_incomplete_record_and_a_missing_folder(tmp_path):
    write_record({"schema": "mine"}, tmp_path / "a.json")
    with pytest.raises(ValueError, match=r"lacks \['k'\]"):
        read_records(tmp_path, "mine", ["k"])
    with pytest.raises(ValueError, match="directory must be an existing folder"):
        read_records(tmp_path / "nowhere", "mine", [])


def test_every_record_notes_synthetic_and_jpeg_data_and_nothing_for_the_original():
    from clr_lib.data import make_synthetic_cifar10
    from clr_lib.experiments.provenance import data_notes

    synthetic = make_synthetic_cifar10(20, 10)
    jpeg = replace(synthetic, source="/data/cifar10-jpeg.tar.gz")
    original = replace(synthetic, source="/data/cifar-10-batches-py")
    assert "SYNTHETIC" in data_notes(synthetic)[0]
    assert "JPEG" in data_notes(jpeg)[0]
    assert data_notes(original) == []


def test_run_context_records_where_when_how_and_on_what_data():
    from clr_lib.data import make_synthetic_cifar10
    from clr_lib.experiments.provenance import run_context

    data = make_synthetic_cifar10(20, 10)
    context = run_context("cpu", data, 7, "python -m clr_lib.experiments --seed 7")
    assert set(context) == {"environment", "provenance", "data"}
    assert context["provenance"]["seed"] == 7 and context["provenance"]["command"].endswith("--seed 7")
    assert set(context["provenance"]) >= {"commit", "dirty", "date_utc"}
    assert context["data"] == {"source": data.source, "synthetic": True, "classes": list(data.classes),
                               "train_images": 20, "test_images": 10}
    assert context["environment"]["device_type"] == "cpu"


def test_first_reaching_is_the_first_point_at_or_above_the_target_on_any_axis():
    from clr_lib.experiments.records import first_reaching

    accuracies = [0.2, 0.5, 0.4, 0.7]
    assert first_reaching([10, 20, 30, 40], accuracies, 0.5) == 20       # iterations
    assert first_reaching([1.5, 3.0, 4.5, 6.0], accuracies, 0.6) == 6.0  # seconds
    assert first_reaching([10, 20, 30, 40], accuracies, 0.8) is None
    with pytest.raises(ValueError, match="target_accuracy must be a fraction in \\[0, 1\\], got 81.4"):
        first_reaching([10], [0.9], 81.4)
