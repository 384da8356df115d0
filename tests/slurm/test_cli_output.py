"""The human output of `bgrun run`, `show` and `list` for Slurm jobs, against the real cluster (see conftest.py)."""

from __future__ import annotations

import json
import re

LIST_COLUMNS = ["ID", "STATE", "BACKEND", "CATEGORY", "NAME", "COMMAND", "START", "DURATION", "LOG"]


def run_lines(project, *options: str, command: str = "echo hi") -> list[str]:
    """Run `bgrun run OPTIONS -- COMMAND` without --json and return its output lines."""
    return project.run("run", *options, "--", command, check=True).stdout.splitlines()


def job_id_of(lines: list[str]) -> str:
    return re.fullmatch(r"job (\S+) scheduled, starts in .*", lines[0]).group(1)


def slurm_line_of(text: str) -> str:
    return re.search(r"^slurm: .*$", text, re.MULTILINE).group(0)


def test_run_names_slurm_job_id(project):
    lines = run_lines(project, "--delay", "0")
    job = project.job(job_id_of(lines))
    assert lines[0] == f"job {job['id']} scheduled, starts in 0 s"
    assert lines[1] == f"slurm: submitted as job {job['backend_id']}"
    assert lines[2] == f"log: {job['log_path']}"
    assert len(lines) == 3


def test_run_short_delay_before_sbatch(project):
    lines = run_lines(project, "--delay", "3")
    job = project.job(job_id_of(lines))
    assert lines[1] == "slurm: will be submitted in 3 s"
    assert lines[2] == f"log: {job['log_path']}"
    done = project.wait_state(job["id"], "succeeded")
    show_output = project.run("show", job["id"], check=True).stdout
    assert f"\nslurm: submitted as job {done['backend_id']}\n" in show_output


def test_run_begin_pending_until_begin(project, cluster):
    lines = run_lines(project, "--delay", "600")
    job = project.job(job_id_of(lines))
    begin = job["scheduled_for"][:19].replace("T", " ")
    expected = f"slurm: job {job['backend_id']}, pending until its begin time {begin}"
    assert job["backend_id"].isdigit()
    assert lines[1] == expected
    assert "Reason=BeginTime" in cluster.scontrol_job(job["backend_id"]).stdout
    show_output = project.run("show", job["id"], check=True).stdout
    assert f"\nbackend_id: {job['backend_id']}\n{expected}\n" in show_output


def test_show_running_job(project):
    lines = run_lines(project, "--delay", "0", command="sleep 300")
    job = project.wait_state(job_id_of(lines), "running")
    show_output = project.run("show", job["id"], check=True).stdout
    assert slurm_line_of(show_output) == f"slurm: running as job {job['backend_id']}"
    assert "\nbackend: slurm\n" in show_output


def test_show_stopped_before_sbatch(project):
    lines = run_lines(project, "--delay", "20")
    project.run("stop", job_id_of(lines), check=True)
    show_output = project.run("show", job_id_of(lines), check=True).stdout
    assert slurm_line_of(show_output) == "slurm: never submitted"


def test_list_marks_slurm_jobs(project):
    local = project.submit("echo local", options=("--delay", "0", "--backend", "local"))
    pending = json.loads(project.run("run", "--json", "--delay", "600", "--", "echo later", check=True).stdout)
    waiting = json.loads(project.run("run", "--json", "--delay", "20", "--", "echo soon", check=True).stdout)
    lines = project.run("list", check=True).stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert lines[0].split() == LIST_COLUMNS
    assert rows[pending["id"]][:3] == [pending["id"], "scheduled", f"slurm:{pending['backend_id']}"]
    assert rows[waiting["id"]][:3] == [waiting["id"], "scheduled", "slurm"]
    assert rows[local["id"]][2] == "local"


def test_json_output_has_no_slurm_line(project):
    result = project.run("run", "--json", "--delay", "0", "--", "echo hi", check=True)
    job = json.loads(result.stdout)
    show_output = json.loads(project.run("show", "--json", job["id"], check=True).stdout)
    listed = json.loads(project.run("list", "--json", check=True).stdout)
    assert job["backend_id"].isdigit()
    assert "slurm" not in show_output
    assert [entry["id"] for entry in listed] == [job["id"]]


def test_show_held_job_reason(project):
    lines = run_lines(project, "--delay", "0", "--sbatch-option=--hold")
    job = project.job(job_id_of(lines))

    def held_line():
        line = slurm_line_of(project.run("show", job["id"], check=True).stdout)
        return line if "(" in line else None

    from ..conftest import wait_for

    line = wait_for(held_line, message="Slurm to give the held job its pending reason")
    assert line == f"slurm: job {job['backend_id']}, queued in Slurm (JobHeldUser)"
