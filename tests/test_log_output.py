"""The job's log: where it goes, what it holds, its header and footer, and the log-root rule."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import psutil

from bgrun import logfile

from .conftest import wait_for

LOG_NAME = re.compile(r"^[A-Za-z0-9._-]+_\d{8}_\d{6}(_\d+)?\.log$")


def finished_log(project, *command: str, options: tuple[str, ...] = ("--delay", "0"), **kwargs) -> tuple[dict, str]:
    job = project.submit(*command, options=options, **kwargs)
    text = project.wait_footer(job["id"])
    return project.job(job["id"]), text


def output_of(text: str) -> str:
    """Return the job's own output: the log without its bgrun lines."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("[bgrun] "))


def test_log_path_pattern(project):
    job, _ = finished_log(project, "echo hi")
    path = Path(job["log_path"])
    assert path.parent == project.log_root / "model_dev"
    assert LOG_NAME.match(path.name)
    assert path.name.startswith("echo_")


def test_stdout_and_stderr_interleaved(project):
    script = "for i in 1 2 3; do echo out$i; echo err$i >&2; done"
    _, text = finished_log(project, script)
    assert output_of(text) == "out1\nerr1\nout2\nerr2\nout3\nerr3\n"


def test_python_output_interleaved(project):
    code = "import sys\nfor i in range(3):\n    print('out', i)\n    print('err', i, file=sys.stderr)"
    _, text = finished_log(project, sys.executable, "-c", code)
    assert output_of(text) == "out 0\nerr 0\nout 1\nerr 1\nout 2\nerr 2\n"


def test_launcher_prints_no_job_output(project):
    result = project.run("run", "--delay", "0", "--", "echo secret-output-line", check=True)
    assert "secret-output-line" not in result.stdout
    assert "secret-output-line" not in result.stderr


def test_python_unbuffered_by_default(project):
    job = project.submit(sys.executable, "-c", "import time; print('early line'); time.sleep(300)")
    project.wait_state(job["id"], "running")
    wait_for(lambda: "early line\n" in project.log_text(job["id"]), timeout=20,
             message="the printed line to reach the log while the job runs")
    assert project.job(job["id"])["state"] == "running"


def test_python_unbuffered_kept_when_set(project):
    code = "import os; print(repr(os.environ.get('PYTHONUNBUFFERED')))"
    _, text = finished_log(project, sys.executable, "-c", code, env={"PYTHONUNBUFFERED": ""})
    assert "\n''\n" in text


def test_python_unbuffered_value(project):
    code = "import os; print(repr(os.environ.get('PYTHONUNBUFFERED')))"
    _, text = finished_log(project, sys.executable, "-c", code)
    assert "\n'1'\n" in text


def test_header_lines_in_order(project):
    job, text = finished_log(project, "echo hi", options=("--delay", "0", "--env", "FOO=bar"))
    lines = text.splitlines()
    keys = [line[len("[bgrun] "):].partition(": ")[0] for line in lines[:len(logfile.HEADER_KEYS)]]
    assert keys == list(logfile.HEADER_KEYS)
    assert lines[0] == f"[bgrun] job: {job['id']}"
    assert lines[1] == "[bgrun] name: echo"
    assert lines[2] == "[bgrun] category: model_dev"
    assert lines[3] == '[bgrun] command: "echo hi"'
    assert lines[4] == "[bgrun] argv: null"
    assert lines[7] == '[bgrun] env added: ["FOO"]'


def test_footer_lines_in_order(project):
    _, text = finished_log(project, "echo hi; exit 3")
    lines = text.splitlines()
    assert lines[-7] == "[bgrun] attempt 1 of 1 ended: failed, exit code 3"
    assert lines[-6] == "[bgrun] state: failed"
    assert lines[-5] == "[bgrun] exit: exit code 3"
    assert re.fullmatch(r"\[bgrun\] duration: \d+\.\d{3} s", lines[-4])
    assert lines[-3].startswith("[bgrun] ended: ")
    assert lines[-2] == "[bgrun] leftover processes: 0"
    assert lines[-1] == "[bgrun] sync: record written and verified"


def test_attempt_started_line(project):
    job, text = finished_log(project, "echo hi")
    assert f"pid {job['pid']}\n" in text
    assert re.search(r"^\[bgrun\] attempt 1 of 1 started: \S+ pid \d+$", text, re.MULTILINE)


def test_log_parses_back(project):
    job, _ = finished_log(project, "echo hi")
    parsed = logfile.parse(Path(job["log_path"]))
    assert parsed["header"]["job"] == job["id"]
    assert parsed["header"]["command"] == "echo hi"
    assert parsed["footer"]["state"] == "succeeded"
    assert [a["event"] for a in parsed["attempts"]] == ["started", "ended"]


def test_footer_on_new_line(project):
    _, text = finished_log(project, "printf 'no newline at end'")
    assert "no newline at end\n[bgrun] attempt 1 of 1 ended" in text
    assert "end[bgrun]" not in text


def test_multiline_command_in_header(project):
    job, text = finished_log(project, "echo one\necho two")
    assert '[bgrun] command: "echo one\\necho two"' in text
    assert output_of(text) == "one\ntwo\n"


def test_non_utf8_output_unchanged(project):
    job, _ = finished_log(project, r"printf 'a\377\376b\n\300\n'")
    data = Path(job["log_path"]).read_bytes()
    assert b"\na\xff\xfeb\n\xc0\n[bgrun] attempt 1 of 1 ended" in data


def test_carriage_returns_unchanged(project):
    job, _ = finished_log(project, r"printf 'progress 1\rprogress 2\r\n'")
    assert b"progress 1\rprogress 2\r\n" in Path(job["log_path"]).read_bytes()


def test_leftover_stopped_and_counted(project):
    job, text = finished_log(project, "sleep 300 & echo $! > leftover.pid; echo main done")
    leftover = int((project.root / "leftover.pid").read_text())
    assert "[bgrun] leftover processes: 1 stopped" in text
    assert job["leftover_processes"] == "1 stopped"
    assert not psutil.pid_exists(leftover) or psutil.Process(leftover).status() == psutil.STATUS_ZOMBIE


def test_leftover_kept_with_flag(project):
    job, text = finished_log(project, "sleep 300 & echo $! > leftover.pid; echo main done",
                             options=("--delay", "0", "--keep-leftovers"))
    leftover = psutil.Process(int((project.root / "leftover.pid").read_text()))
    project.track(leftover.pid)
    assert "[bgrun] leftover processes: 1 left running (kill_leftovers is off)" in text
    assert job["kill_leftovers"] is False
    assert leftover.is_running()
    assert os.getpgid(leftover.pid) == job["pid"]
    leftover.send_signal(signal.SIGKILL)


def test_log_root_from_environment(project):
    other = project.root / "elsewhere"
    job = project.submit("echo hi", env={"BGRUN_LOG_ROOT": str(other)})
    assert Path(job["log_path"]).parent == other / "model_dev"
    assert (other / ".bgrun" / "jobs" / f"{job['id']}.json").is_file()


def test_log_root_nearest_logs_folder(project):
    sub = project.root / "src" / "deep"
    sub.mkdir(parents=True)
    job = project.submit("echo hi", cwd=sub)
    assert Path(job["log_path"]).parent == project.log_root / "model_dev"
    assert job["cwd"] == str(sub)


def test_log_root_nearest_git_folder(project, tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    sub = repo / "pkg"
    sub.mkdir()
    job = project.submit("echo hi", cwd=sub)
    assert Path(job["log_path"]).parent == repo / "logs" / "model_dev"


def test_log_root_search_stops_at_home(project, tmp_path):
    (tmp_path / "logs").mkdir()
    home = tmp_path / "home"
    work = home / "work"
    work.mkdir(parents=True)
    job = project.submit("echo hi", cwd=work, env={"HOME": str(home)})
    assert Path(job["log_path"]).parent == work / "logs" / "model_dev"


def test_log_root_from_config_file(project, tmp_path):
    folder = tmp_path / "configured"
    folder.mkdir()
    (folder / "bgrun.toml").write_text('log_root = "run_logs"\n')
    job = project.submit("echo hi", cwd=folder)
    assert Path(job["log_path"]).parent == folder / "run_logs" / "model_dev"


def test_log_root_environment_beats_config(project, tmp_path):
    folder = tmp_path / "configured"
    folder.mkdir()
    (folder / "bgrun.toml").write_text('log_root = "run_logs"\n')
    other = tmp_path / "from_env"
    job = project.submit("echo hi", cwd=folder, env={"BGRUN_LOG_ROOT": str(other)})
    assert Path(job["log_path"]).parent == other / "model_dev"


def test_log_root_defaults_to_cwd(project, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    job = project.submit("echo hi", cwd=bare)
    assert Path(job["log_path"]).parent == bare / "logs" / "model_dev"


def test_log_root_flag_beats_environment(project, tmp_path):
    flag_root = tmp_path / "flag_root"
    result = project.run("--log-root", str(flag_root), "run", "--json", "--delay", "0", "--", "echo hi",
                         env={"BGRUN_LOG_ROOT": str(tmp_path / "env_root")}, check=True)
    assert f"{flag_root}/model_dev/" in result.stdout
