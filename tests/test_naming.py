"""Job names: derived from the command, sanitised to one file-name segment, and never colliding."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from bgrun import naming

DERIVED_NAMES = [
    ("python train_model.py", "train_model"),
    ("python3 train_model.py --epochs 5", "train_model"),
    ("node train_model.js", "train_model"),
    ("python -m pkg.train", "pkg.train"),
    ("python -mpkg.train", "pkg.train"),
    ("/usr/bin/env python3 -m json.tool", "json.tool"),
    ("X=1 python eval.py", "eval"),
    ("X=1 Y='a b' python eval.py", "eval"),
    ("cd dir && python x.py", "x"),
    ("cd 'my dir' && source .venv/bin/activate && python x.py", "x"),
    ("python -u -W ignore scripts/run.py", "run"),
    ("nohup python train.py > out.txt", "train"),
    ("timeout 60 python eval.py", "eval"),
    ("uv run python bench.py", "bench"),
    ("torchrun --nproc_per_node 4 train.py", "train"),
    ("./scripts/prepare.sh --fast", "prepare"),
    ("bash run_all.sh", "run_all"),
    ("python -c 'print(1)'", "python"),
    ("make build", "make_build"),
    ("npm run lint", "lint"),
    ("echo hi", "echo"),
    ("mkdir -p out && echo done", "mkdir"),
    ("cat <<EOF > g.py\nimport os\nEOF\npython g.py", "g"),
]


@pytest.mark.parametrize(("command", "expected"), DERIVED_NAMES)
def test_derive_name(command, expected):
    assert naming.derive_name(command, None) == expected


def test_derive_name_argv():
    assert naming.derive_name(None, ["python3", "-m", "pkg.train", "--lr", "0.1"]) == "pkg.train"


UNSAFE_NAMES = [
    "python '../../etc/passwd.py'",
    "python 'a b.py'",
    "python 'it\"s.py'",
    "python \"it's.py\"",
    "python $'x\\ty.py'",
    "python 'x\ny.py'",
    "python ..py",
    "python 训练.py",
    "python " + "a" * 300 + ".py",
    "   ",
]


@pytest.mark.parametrize("command", UNSAFE_NAMES)
def test_derived_name_is_safe_segment(command):
    name = naming.derive_name(command, None)
    assert naming.SAFE_SEGMENT.match(name)
    assert ".." not in name
    assert len(name) <= naming.MAX_NAME_LENGTH


@pytest.mark.parametrize("text", ["a/b", "a b", "q'uote", 'q"uote', "tab\there", "nl\nx", "..", "a..b",
                                  "", "...", "x" * 500, "/abs", "\x00nul", "é"])
def test_sanitise_gives_safe_segment(text):
    name = naming.sanitise(text)
    assert naming.SAFE_SEGMENT.match(name)
    assert ".." not in name
    assert len(name) <= naming.MAX_NAME_LENGTH


def test_cli_name_from_python_script(project):
    (project.root / "train_model.py").write_text("print('ok')\n")
    job = project.submit("python3 train_model.py")
    assert job["name"] == "train_model"
    assert Path(job["log_path"]).name.startswith("train_model_")


def test_cli_name_from_cd_chain(project):
    (project.root / "sub").mkdir()
    job = project.submit("cd sub && X=1 python3 -m json.tool --help")
    assert job["name"] == "json.tool"


def test_cli_name_override(project):
    job = project.submit("python3 -c pass", options=("--delay", "0", "--name", "my-run.v2"))
    assert job["name"] == "my-run.v2"
    assert Path(job["log_path"]).name.startswith("my-run.v2_")


@pytest.mark.parametrize("name", ["../x", "a/b", "a b", ".hidden", "x" * 65, "训练", "errors", ""])
def test_cli_name_override_rejected(project, name):
    result = project.run("run", "--delay", "0", "--name", name, "--", "true")
    assert result.returncode == 2
    assert "invalid name" in result.stderr
    assert [path for path in project.log_root.glob("*/*.log") if path.parent.name != "errors"] == []


def test_parallel_same_name_distinct_logs(project):
    processes = [subprocess.Popen(project.bgrun_argv("run", "--json", "--delay", "0", "--name", "same", "--", "echo hi"),
                                  cwd=project.root, env=project.env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(6)]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0] * 6, [err for _, err in outputs]
    paths = {Path(line.split('"log_path": "')[1].split('"')[0]) for out, _ in outputs
             for line in out.splitlines() if '"log_path"' in line}
    assert len(paths) == 6
    for path in paths:
        assert path.name.startswith("same_")
        assert path.read_text().startswith("[bgrun] job: ")


def test_same_second_gets_suffix(project):
    folder = project.log_root / "model_dev"
    folder.mkdir()
    now = time.time()
    precious = {}
    for offset in range(-1, 6):
        stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(now + offset))
        path = folder / f"fixed_{stamp}.log"
        path.write_text(f"precious {offset}\n")
        precious[path] = f"precious {offset}\n"
    job = project.submit("echo hi", options=("--delay", "0", "--name", "fixed"))
    project.wait_footer(job["id"])
    assert Path(job["log_path"]).name.endswith("_2.log")
    for path, text in precious.items():
        assert path.read_text() == text


def test_suffix_counts_up(project):
    folder = project.log_root / "model_dev"
    folder.mkdir()
    now = time.time()
    for offset in range(-1, 6):
        stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(now + offset))
        (folder / f"fixed_{stamp}.log").write_text("taken\n")
        (folder / f"fixed_{stamp}_2.log").write_text("taken\n")
    job = project.submit("echo hi", options=("--delay", "0", "--name", "fixed"))
    assert Path(job["log_path"]).name.endswith("_3.log")
