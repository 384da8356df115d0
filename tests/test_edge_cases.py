"""Hard cases: huge output, closed output streams, daemons, unicode, long commands, env files and
activated environments.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from bgrun.engine import spawn
from bgrun.errors import UsageError

from .conftest import wait_for

DAEMON = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        with open("daemon.pid.part", "w") as handle:
            handle.write(str(os.getpid()))
        os.rename("daemon.pid.part", "daemon.pid")
        time.sleep(300)
        os._exit(0)
    os._exit(0)
os.wait()
while not os.path.exists("daemon.pid"):
    time.sleep(0.01)
print("main exits")
"""


def output_of(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("[bgrun] "))


def finished(project, *command: str, **kwargs) -> tuple[dict, str]:
    job = project.submit(*command, **kwargs)
    text = project.wait_footer(job["id"])
    return project.job(job["id"]), text


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_huge_output(project):
    job, _ = finished(project, "head -c 20000000 /dev/zero | tr '\\0' x; echo; echo tail-line")
    data = Path(job["log_path"]).read_bytes()
    assert data.count(b"x") >= 20_000_000
    assert b"x\ntail-line\n[bgrun] attempt 1 of 1 ended: succeeded" in data
    assert data.endswith(b"[bgrun] sync: record written and verified\n")


def test_many_short_lines(project):
    job, text = finished(project, sys.executable, "-c", "for i in range(100000): print(i)")
    lines = output_of(text).splitlines()
    assert lines[0] == "0"
    assert lines[-1] == "99999"
    assert len(lines) == 100000


def test_job_closes_stdout(project):
    job, text = finished(project, "exec 1>&-; echo to-stderr >&2; echo to-closed-stdout; exit 0")
    assert "to-stderr\n" in text
    assert job["state"] in ("succeeded", "failed")
    assert text.endswith("[bgrun] sync: record written and verified\n")


def test_job_closes_both_streams(project):
    job, text = finished(project, "exec 1>&- 2>&-; sleep 0.3; exit 3")
    assert job["exit_code"] == 3
    assert "[bgrun] state: failed\n" in text


def test_job_reads_stdin(project):
    job, text = finished(project, "cat; echo after-eof")
    assert job["state"] == "succeeded"
    assert output_of(text) == "after-eof\n"


def test_job_truncates_own_log(project):
    job, text = finished(project, "echo before; : > /proc/self/fd/1; echo after")
    assert job["state"] == "succeeded"
    assert text.startswith("after\n[bgrun] attempt 1 of 1 ended: succeeded")
    assert text.endswith("[bgrun] sync: record written and verified\n")


def test_daemon_stopped_when_job_ends(project):
    (project.root / "daemon.py").write_text(DAEMON)
    job, text = finished(project, sys.executable, "daemon.py")
    daemon_pid = int((project.root / "daemon.pid").read_text())
    assert "main exits\n" in text
    assert job["state"] == "succeeded"
    assert "[bgrun] leftover processes: 1 stopped\n" in text
    assert wait_for(lambda: gone(daemon_pid), timeout=15, message="the daemon to end")


def test_setsid_child_counted_as_leftover(project):
    job, text = finished(project, "setsid sleep 300 & echo $! > child.pid; sleep 0.3")
    child = int((project.root / "child.pid").read_text())
    assert "[bgrun] leftover processes: 1 stopped\n" in text
    assert wait_for(lambda: gone(child), timeout=15, message="the setsid child to end")


def test_job_marker_in_environment(project):
    job, text = finished(project, "echo marker=$BGRUN_JOB")
    assert f"marker={job['id']}@{project.log_root}\n" in text


def test_nested_job_gets_own_marker(project):
    inner = shlex.join(project.bgrun_argv("run", "--json", "--delay", "0", "--", "echo inner=$BGRUN_JOB; sleep 300"))
    outer, _ = finished(project, f"{inner} > inner.json")
    inner_job = json.loads((project.root / "inner.json").read_text())
    project.wait_state(inner_job["id"], "running")
    assert project.job(inner_job["id"])["state"] == "running"
    wait_for(lambda: f"inner={inner_job['id']}@" in project.log_text(inner_job["id"]),
             message="the inner job to print its marker")
    assert f"inner={outer['id']}@" not in project.log_text(inner_job["id"])


def test_unicode_cwd_and_output(project):
    folder = project.root / "données ✓"
    folder.mkdir()
    job, text = finished(project, "pwd; echo 日本語", options=("--delay", "0", "--cwd", str(folder)))
    assert job["cwd"] == str(folder)
    assert output_of(text) == f"{folder}\n日本語\n"
    assert f'[bgrun] cwd: "{folder}"' in text


def test_unicode_script_name(project):
    (project.root / "训练.py").write_text("print('ok')\n")
    job, text = finished(project, "python3 训练.py")
    assert job["state"] == "succeeded"
    assert Path(job["log_path"]).name.startswith("job_")


def test_unicode_category_rejected(project):
    result = project.run("run", "--delay", "0", "--category", "données", "--", "true")
    assert result.returncode == 2
    assert "invalid category" in result.stderr


def test_long_command_line(project):
    payload = "y" * 100_000
    job, text = finished(project, f"echo {payload} | wc -c")
    assert output_of(text).strip() == "100001"
    assert job["command"] == f"echo {payload} | wc -c"


def test_command_too_long_rejected(project):
    # The CLI cannot even receive a word this long, so the request goes to the engine directly,
    # as the language server sends it: 140 005 bytes of UTF-8 in 70 005 characters.
    request = spawn.RunRequest(command="echo " + "é" * 70_000, cwd=str(project.root), delay=0)
    with pytest.raises(UsageError, match="longer than 131071 bytes"):
        spawn.plan_job(request, environ=project.env)


def test_many_argv_words(project):
    words = [f"w{index}" for index in range(5000)]
    job, text = finished(project, "echo", *words)
    assert output_of(text) == " ".join(words) + "\n"


def test_delay_too_long_rejected(project):
    result = project.run("run", "--delay", "1e20", "--", "true")
    assert result.returncode == 2
    assert "invalid delay" in result.stderr
    assert "Traceback" not in result.stderr


def test_command_only_newlines(project):
    result = project.run("run", "--delay", "0", "--", "\n\t\n")
    assert result.returncode == 2
    assert "invalid command" in result.stderr


def test_shell_syntax_error_recorded(project):
    job, text = finished(project, "echo 'unclosed")
    assert job["state"] == "failed"
    assert job["exit_code"] == 2
    assert "unterminated" in text.lower() or "unexpected" in text.lower()


ENV_FILE = """\
# a comment
PLAIN=one
export EXPORTED=two
SPACED = three
DOUBLE="four five"
SINGLE='six # not a comment'
TRAILING=seven # a comment
QUOTED_COMMENT="eight" # a comment
NEWLINE="a\\nb"
ESCAPED="say \\"hi\\""
EMPTY=
EQUALS=x=y

"""

ENV_EXPECTED = {
    "PLAIN": "one",
    "EXPORTED": "two",
    "SPACED": "three",
    "DOUBLE": "four five",
    "SINGLE": "six # not a comment",
    "TRAILING": "seven",
    "QUOTED_COMMENT": "eight",
    "NEWLINE": "a\nb",
    "ESCAPED": 'say "hi"',
    "EMPTY": "",
    "EQUALS": "x=y",
}


def test_env_file_parsing(project):
    (project.root / "job.env").write_text(ENV_FILE)
    code = f"import json, os; print(json.dumps({{k: os.environ.get(k) for k in {sorted(ENV_EXPECTED)!r}}}))"
    job, text = finished(project, sys.executable, "-c", code, options=("--delay", "0", "--env-file", "job.env"))
    seen = json.loads(output_of(text))
    for name, value in ENV_EXPECTED.items():
        assert seen[name] == value, name


def test_env_flag_beats_env_file(project):
    (project.root / "job.env").write_text("WHICH=file\n")
    _, text = finished(project, "echo $WHICH", options=("--delay", "0", "--env-file", "job.env", "--env", "WHICH=flag"))
    assert output_of(text) == "flag\n"


def test_env_file_invalid_line(project):
    (project.root / "job.env").write_text("GOOD=1\nthis is not an assignment\n")
    result = project.run("run", "--delay", "0", "--env-file", "job.env", "--", "true")
    assert result.returncode == 2
    assert "line 2" in result.stderr


def test_env_file_not_utf8(project):
    (project.root / "job.env").write_bytes(b"BAD=\xff\n")
    result = project.run("run", "--delay", "0", "--env-file", "job.env", "--", "true")
    assert result.returncode == 2
    assert "cannot read env file" in result.stderr


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("venvs") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    return path


def test_venv_activation(project, venv):
    job, text = finished(project, "python -c 'import sys, os; print(sys.prefix); print(os.environ[\"VIRTUAL_ENV\"])'",
                         options=("--delay", "0", "--environment", str(venv)))
    assert output_of(text) == f"{venv}\n{venv}\n"
    assert job["environment"] == str(venv)
    assert f'[bgrun] environment: "{venv}"' in text


def test_venv_activation_argv(project, venv):
    _, text = finished(project, "python", "-c", "import sys; print(sys.prefix)",
                       options=("--delay", "0", "--environment", str(venv)))
    assert output_of(text) == f"{venv}\n"


def test_venv_by_interpreter_path(project, venv):
    job = project.submit("python -c pass", options=("--delay", "0", "--environment", str(venv / "bin" / "python")))
    assert job["environment"] == str(venv)


def test_venv_relative_to_cwd(project, venv):
    work = venv.parent
    job = project.submit("python -c pass", options=("--delay", "0", "--cwd", str(work), "--environment", venv.name))
    assert job["environment"] == str(venv)


def test_venv_from_config(project, venv):
    (project.root / "bgrun.toml").write_text(f'environment = "{venv}"\n')
    _, text = finished(project, "python -c 'import sys; print(sys.prefix)'")
    assert output_of(text) == f"{venv}\n"


def test_not_a_venv_rejected(project):
    folder = project.root / "plain"
    folder.mkdir()
    result = project.run("run", "--delay", "0", "--environment", str(folder), "--", "true")
    assert result.returncode == 2
    assert "pyvenv.cfg" in result.stderr


def test_log_root_with_spaces(project, tmp_path):
    root = tmp_path / "log root with spaces"
    job = project.submit("echo spaced", env={"BGRUN_LOG_ROOT": str(root)})
    assert job["log_path"].startswith(f"{root}/model_dev/")
    wait_for(lambda: "[bgrun] sync: " in Path(job["log_path"]).read_text(), message="the footer")
    assert "\nspaced\n" in Path(job["log_path"]).read_text()


def test_job_replaces_shell_with_exec(project):
    job, _ = finished(project, "exec sleep 0.2")
    assert job["state"] == "succeeded"
