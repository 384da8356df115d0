"""Categories: the default, the built-in rules, rules from bgrun.toml, and rejected values."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_category_default(project):
    job = project.submit("echo hi")
    assert job["category"] == "model_dev"
    assert Path(job["log_path"]).parent == project.log_root / "model_dev"


def test_category_pytest_is_testing(project):
    job = project.submit("python3 -m pytest -q --version")
    assert job["category"] == "testing"


def test_category_test_script_is_testing(project):
    (project.root / "test_model.py").write_text("print('ok')\n")
    job = project.submit("python3 test_model.py")
    assert job["category"] == "testing"
    assert Path(job["log_path"]).parent == project.log_root / "testing"


def test_category_train_is_training(project):
    (project.root / "train.py").write_text("print('ok')\n")
    job = project.submit("python3 train.py --epochs 1")
    assert job["category"] == "training"
    assert Path(job["log_path"]).parent == project.log_root / "training"


def test_category_flag(project):
    job = project.submit("python3 -c pass", options=("--delay", "0", "--category", "experiments"))
    assert job["category"] == "experiments"
    assert Path(job["log_path"]).parent == project.log_root / "experiments"


def test_category_rules_from_config(project):
    (project.root / "bgrun.toml").write_text(
        'category_rules = [{pattern = "bench*", category = "benchmarks"}]\n')
    (project.root / "bench_io.py").write_text("print('ok')\n")
    job = project.submit("python3 bench_io.py")
    assert job["category"] == "benchmarks"


def test_category_rules_replace_defaults(project):
    (project.root / "bgrun.toml").write_text(
        'category_rules = [{pattern = "bench*", category = "benchmarks"}]\n')
    job = project.submit("python3 train.py")
    assert job["category"] == "model_dev"


def test_category_default_from_config(project):
    (project.root / "bgrun.toml").write_text('category = "scratch"\n')
    job = project.submit("python3 -c pass")
    assert job["category"] == "scratch"


def test_category_flag_beats_rules(project):
    job = project.submit("python3 train.py", options=("--delay", "0", "--category", "model_dev"))
    assert job["category"] == "model_dev"


@pytest.mark.parametrize("category", ["../x", "/abs", "errors", "sync", ".bgrun", "a/b", "..", "x y", ""])
def test_category_rejected(project, category):
    result = project.run("run", "--delay", "0", "--category", category, "--", "true")
    assert result.returncode == 2
    assert "invalid category" in result.stderr
    assert repr(category) in result.stderr
    assert not (project.log_root / ".bgrun").exists()


def test_category_rule_to_reserved_rejected(project):
    (project.root / "bgrun.toml").write_text('category_rules = [{pattern = "*", category = "errors"}]\n')
    result = project.run("run", "--delay", "0", "--", "true")
    assert result.returncode == 2
    assert "reserved" in result.stderr


def test_category_rules_invalid_config(project):
    (project.root / "bgrun.toml").write_text('category_rules = [{pattern = "x"}]\n')
    result = project.run("run", "--delay", "0", "--", "true")
    assert result.returncode == 2
    assert "category_rules" in result.stderr
