def test_run_succeeds(project):
    job = project.submit("echo hi")
    done = project.wait_state(job["id"], "succeeded")
    assert done["exit_code"] == 0
    assert "hi" in project.wait_footer(job["id"])
