"""`bgrun stop` of a Slurm job whose shell exits before its program, against the real test cluster."""

from __future__ import annotations

from ..conftest import wait_for

# The shell runs two commands, so it waits for python3 instead of exec'ing it. On SIGTERM the
# shell exits at once, while python3 takes a second to end.
SLOW_TO_END = (
    "python3 -c 'import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1), sys.exit(0)))\n"
    "print(\"ready\", flush=True)\n"
    "time.sleep(300)'; echo unreachable"
)


def test_stop_counts_no_leftovers(project):
    job = project.submit(SLOW_TO_END)
    project.wait_state(job["id"], "running")
    wait_for(lambda: "ready\n" in project.log_text(job["id"]), message="the job to print ready")

    result = project.run("stop", job["id"])

    assert result.returncode == 0, result.stderr
    text = project.wait_footer(job["id"])
    assert "[bgrun] state: cancelled" in text
    assert "[bgrun] leftover processes: 0\n" in text
    assert "\nunreachable\n" not in text
