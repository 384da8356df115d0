"""Settings and parsing of the slurm backend, without a cluster."""

from __future__ import annotations

import pytest

from bgrun import config, schema
from bgrun.backends import slurm
from bgrun.errors import UsageError
from bgrun.server.folders import editor_settings


def test_slurm_options_from_each_source(tmp_path):
    (tmp_path / "bgrun.toml").write_text('backend = "slurm"\nslurm_options = ["--partition=debug"]\n')
    from_file = config.resolve_settings(tmp_path, environ={})
    from_shell_words = config.resolve_settings(tmp_path, environ={"BGRUN_SLURM_OPTIONS": "--time=5 '--comment=a b'"})
    from_json = config.resolve_settings(tmp_path, environ={"BGRUN_SLURM_OPTIONS": '["--time=5"]'})
    assert from_file.backend == "slurm"
    assert from_file.slurm_options == ["--partition=debug"]
    assert from_shell_words.slurm_options == ["--time=5", "--comment=a b"]
    assert from_json.slurm_options == ["--time=5"]


def test_invalid_slurm_options_rejected(tmp_path):
    with pytest.raises(UsageError, match="slurm_options"):
        config.resolve_settings(tmp_path, environ={}, editor={"slurm_options": [1, 2]})


def test_editor_backend_settings_mapped():
    settings = editor_settings({"backend": "slurm", "slurmOptions": ["--time=5"]})
    assert settings == {"backend": "slurm", "slurm_options": ["--time=5"]}


@pytest.mark.parametrize("slurm_state, state", [
    ("PENDING", schema.SCHEDULED), ("CONFIGURING", schema.SCHEDULED), ("RUNNING", schema.RUNNING),
    ("COMPLETING", schema.RUNNING), ("COMPLETED", schema.SUCCEEDED), ("FAILED", schema.FAILED),
    ("TIMEOUT", schema.FAILED), ("NODE_FAIL", schema.FAILED), ("OUT_OF_MEMORY", schema.FAILED),
    ("BOOT_FAIL", schema.FAILED), ("DEADLINE", schema.FAILED), ("PREEMPTED", schema.FAILED),
    ("CANCELLED", schema.CANCELLED),
])
def test_state_mapping(slurm_state, state):
    job = slurm.SlurmJob("1", slurm_state, None, None, None, completing=slurm_state == "COMPLETING")
    assert job.bgrun_state == state


@pytest.mark.parametrize("text, seconds", [
    ("05:00", 300), ("01:00:00", 3600), ("1-00:00:01", 86401), ("UNLIMITED", None), ("", None),
])
def test_parse_duration(text, seconds):
    assert slurm.parse_duration(text) == seconds


def test_missing_config_names_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(slurm, "DEFAULT_CONFIG", tmp_path / "none.conf")
    with pytest.raises(UsageError, match="SLURM_CONF is not set"):
        slurm.client_environ({"PATH": "/usr/bin"})
    with pytest.raises(UsageError, match="is not a file"):
        slurm.client_environ({"SLURM_CONF": str(tmp_path / "missing.conf")})
