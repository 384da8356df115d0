"""Shell semantics: one word after `--` is a shell line, two or more are an argv run without a shell."""

from __future__ import annotations

import sys

CD_LINE = (
    "mkdir -p bgrun_cd && cd bgrun_cd && GREETING='hi  there' python3 -c "
    "\"import os; print(os.path.basename(os.getcwd()), os.environ['GREETING'])\" | tr a-z A-Z "
    "&& echo \"it's done; ok\""
)


def output_of(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("[bgrun] "))


def finished_output(project, *command: str, **kwargs) -> tuple[dict, str]:
    job = project.submit(*command, **kwargs)
    text = project.wait_footer(job["id"])
    return project.job(job["id"]), output_of(text)


def test_shell_line_semantics(project):
    job, output = finished_output(project, CD_LINE)
    assert output == "BGRUN_CD HI  THERE\nit's done; ok\n"
    assert job["state"] == "succeeded"
    assert job["shell"] is True
    assert job["argv"] is None
    assert job["command"] == CD_LINE


def test_shell_line_runs_in_cwd(project):
    assert (project.root / "bgrun_cd").exists() is False
    finished_output(project, CD_LINE)
    assert (project.root / "bgrun_cd").is_dir()


def test_argv_semicolon_literal(project):
    job, output = finished_output(project, "echo", "a;b", "c && d")
    assert output == "a;b c && d\n"
    assert job["shell"] is False
    assert job["argv"] == ["echo", "a;b", "c && d"]


def test_argv_no_expansion(project):
    _, output = finished_output(project, "printf", "%s|", "$HOME", "*", "`id`", "$(id)", "~")
    assert output == "$HOME|*|`id`|$(id)|~|\n"


def test_argv_keeps_spaces_and_quotes(project):
    _, output = finished_output(project, sys.executable, "-c", "import sys; print(sys.argv[1:])",
                                "two  spaces", "it's", 'say "hi"', "")
    assert output == "['two  spaces', \"it's\", 'say \"hi\"', '']\n"


def test_shell_line_pipes_and_redirects(project):
    _, output = finished_output(project, "echo abc | tr a-c x-z > piped.txt; cat piped.txt; echo to-err >&2")
    assert output == "xyz\nto-err\n"


def test_shell_line_exit_status(project):
    job, _ = finished_output(project, "false || exit 4")
    assert job["exit_code"] == 4


def test_shell_line_env_flag(project):
    _, output = finished_output(project, 'echo "$MY_VAR"', options=("--delay", "0", "--env", "MY_VAR=a b;c"))
    assert output == "a b;c\n"


def test_argv_env_flag(project):
    _, output = finished_output(project, sys.executable, "-c", "import os; print(os.environ['MY_VAR'])",
                                options=("--delay", "0", "--env", "MY_VAR=x=y"))
    assert output == "x=y\n"


def test_shell_line_unicode(project):
    _, output = finished_output(project, "echo 'héllo wörld ✓'")
    assert output == "héllo wörld ✓\n"


def test_shell_line_cwd_flag(project):
    (project.root / "work").mkdir()
    job, output = finished_output(project, "pwd", options=("--delay", "0", "--cwd", "work"))
    assert output == f"{project.root / 'work'}\n"
    assert job["cwd"] == str(project.root / "work")


def test_shell_function_definition(project):
    _, output = finished_output(project, "greet() { echo hello \"$1\"; }; greet you")
    assert output == "hello you\n"


def test_shell_here_document(project):
    line = "cat <<EOF > made.py\nprint('from heredoc')\nEOF\npython3 made.py"
    job, output = finished_output(project, line)
    assert output == "from heredoc\n"
    assert job["name"] == "made"
