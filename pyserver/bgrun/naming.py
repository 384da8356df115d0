"""Job names and categories.

The name of a job is the readable stem of what it runs, not the interpreter: `python train.py`
is `train`, `python -m pkg.train` is `pkg.train`, `X=1 node eval.js` is `eval`, and a
`cd dir && …` chain is named after its first real command. The name becomes one safe file-name
segment, because it is the first part of the log file's name.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
from typing import Iterable, Sequence

from .errors import UsageError

MAX_NAME_LENGTH = 64
RESERVED_FOLDERS = frozenset({"errors", "sync", ".bgrun"})
SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# Commands that prepare a chain (`cd x && …`) rather than do its work.
SETUP_COMMANDS = frozenset(
    {"cd", "pushd", "popd", "export", "set", "unset", "source", ".", "mkdir", "ulimit", "umask",
     "module", "ml", "true", ":", "echo", "printf", "sleep", "rm", "cp", "mv", "touch", "clear",
     "eval", "shopt", "alias", "trap", "wait", "conda", "activate", "deactivate", "hash",
     "exit", "return", "cat", "ls", "pwd", "date", "nvidia-smi"}
)
SHELL_OPERATORS = frozenset({"&&", "||", ";", "|", "&", "|&", ";;", "(", ")", "\n", "!", "{", "}"})

# Wrappers that run the command after their own options; the value is the set of their options
# that take an argument.
WRAPPERS: dict[str, frozenset[str]] = {
    "env": frozenset({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"}),
    "nohup": frozenset(),
    "nice": frozenset({"-n", "--adjustment"}),
    "ionice": frozenset({"-c", "-n", "-p"}),
    "time": frozenset({"-f", "--format", "-o", "--output"}),
    "exec": frozenset({"-a"}),
    "command": frozenset(),
    "sudo": frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "timeout": frozenset({"-k", "--kill-after", "-s", "--signal"}),
    "taskset": frozenset(),
    "numactl": frozenset(),
    "xvfb-run": frozenset({"-a", "-n", "-s", "-f", "-e", "-p", "-w"}),
    "srun": frozenset({"-n", "-N", "-p", "-t", "-c", "-J", "--gres", "-A", "-q", "-w"}),
    "mpirun": frozenset({"-n", "-np", "-N", "--host", "-H", "--hostfile", "-x"}),
    "mpiexec": frozenset({"-n", "-np", "-N", "--host", "-H", "--hostfile", "-x"}),
}
# Wrappers whose first plain argument is not yet the command (`timeout 60 cmd`, `taskset 3 cmd`).
WRAPPERS_WITH_POSITIONAL = frozenset({"timeout", "taskset"})

# Runners whose subcommand comes before the real command: `uv run`, `poetry run`, `conda run`.
RUNNERS = {
    "uv": frozenset({"run"}),
    "poetry": frozenset({"run"}),
    "pipenv": frozenset({"run"}),
    "pdm": frozenset({"run"}),
    "hatch": frozenset({"run"}),
    "conda": frozenset({"run"}),
    "mamba": frozenset({"run"}),
    "micromamba": frozenset({"run"}),
    "pixi": frozenset({"run"}),
    "accelerate": frozenset({"launch"}),
}
RUNNER_OPTIONS_WITH_ARGUMENT = frozenset({"-n", "--name", "-p", "--prefix", "--with", "--python",
                                          "--config_file", "--num_processes", "-e", "--environment"})

INTERPRETER_PATTERN = re.compile(
    r"^(python|pypy|ipython|node|nodejs|deno|bun|ts-node|tsx|ruby|perl|php|julia|rscript|lua|"
    r"bash|sh|zsh|dash|ksh|fish|torchrun|deepspeed|coverage|py)"
    r"([0-9.]*)(\.exe)?$",
    re.IGNORECASE,
)
# Options of interpreters that take a separate argument (`python -W ignore x.py`).
INTERPRETER_OPTIONS_WITH_ARGUMENT = frozenset(
    {"-W", "-X", "-r", "--require", "--import", "--loader", "--nproc_per_node", "--nproc-per-node",
     "--nnodes", "--node_rank", "--master_addr", "--master_port", "--rdzv_backend",
     "--rdzv_endpoint", "--include", "--exclude", "--hostfile", "--num_gpus", "--num_nodes",
     "--rcfile", "--source", "--omit"}
)
PACKAGE_MANAGERS = frozenset({"npm", "yarn", "pnpm", "bun", "make", "just", "cargo", "go", "dotnet"})
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SCRIPT_SUFFIXES = (".py", ".js", ".mjs", ".cjs", ".ts", ".mts", ".sh", ".bash", ".rb", ".pl", ".jl",
                   ".R", ".r", ".lua", ".php", ".ipynb")


# `<<WORD`, `<<-WORD`, `<<'WORD'` or `<<"WORD"`, but not the here-string `<<<`.
HEREDOC_START = re.compile(r"""(?<!<)<<(?!<)(-?)\s*(['"]?)([A-Za-z0-9_.-]+)\2""")


def drop_heredoc_bodies(command: str) -> str:
    """Remove the lines of here-documents, which are data for a command and not commands."""
    if "<<" not in command:
        return command
    kept: list[str] = []
    pending: list[tuple[bool, str]] = []
    for line in command.split("\n"):
        if pending:
            strip_tabs, word = pending[0]
            if (line.lstrip("\t") if strip_tabs else line) == word:
                pending.pop(0)
            continue
        kept.append(line)
        pending = [(dash == "-", word) for dash, _, word in HEREDOC_START.findall(line)]
    return "\n".join(kept)


def split_shell_words(command: str) -> list[str]:
    """Split a command line into words and operators the way a POSIX shell tokenises it.

    Here-document bodies are dropped first. Unbalanced quotes fall back to whitespace splitting:
    the shell will report the error itself when the job runs, and the name only needs a best guess.
    """
    command = drop_heredoc_bodies(command)
    lexer = shlex.shlex(command.replace("\n", " ; "), posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:
        return command.split()


def simple_commands(words: Sequence[str]) -> list[list[str]]:
    """Split shell words at operators into simple commands, dropping redirections."""
    commands: list[list[str]] = [[]]
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        if word in SHELL_OPERATORS or set(word) <= set(";&|") and word:
            commands.append([])
        elif set(word) <= set("<>&") or re.fullmatch(r"[0-9]*[<>]+&?", word):
            skip_next = True
        else:
            commands[-1].append(word)
    return [command for command in commands if command]


def _stem(word: str) -> str:
    base = os.path.basename(word.rstrip("/")) or word
    for suffix in SCRIPT_SUFFIXES:
        if base.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return base


def _skip_options(words: list[str], with_argument: Iterable[str]) -> list[str]:
    """Drop leading options (and the arguments of those that take one) and VAR=value words."""
    with_argument = frozenset(with_argument)
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--":
            return words[index + 1:]
        if ASSIGNMENT.match(word):
            index += 1
        elif word.startswith("-") and word != "-":
            index += 2 if word in with_argument else 1
        else:
            break
    return words[index:]


def name_of_words(words: list[str]) -> str | None:
    """Return the readable stem of one simple command, or None for a setup command."""
    words = _skip_options(words, ())
    while words:
        program = os.path.basename(words[0])
        rest = words[1:]
        if program in SETUP_COMMANDS and len(words) > 0:
            return None
        if program in WRAPPERS:
            words = _skip_options(rest, WRAPPERS[program])
            if program in WRAPPERS_WITH_POSITIONAL and words:
                words = words[1:]
            continue
        if program in RUNNERS and rest and rest[0] in RUNNERS[program]:
            words = _skip_options(rest[1:], RUNNER_OPTIONS_WITH_ARGUMENT)
            continue
        if INTERPRETER_PATTERN.match(program):
            return _interpreter_target(program, rest)
        if program in PACKAGE_MANAGERS and rest:
            target = _skip_options(rest, ())
            if target and target[0] == "run" and len(target) > 1:
                target = target[1:]
            if target:
                return f"{program}_{_stem(target[0])}" if program in ("make", "just", "cargo", "go") \
                    else _stem(target[0])
            return program
        return _stem(words[0])
    return None


def _interpreter_target(program: str, rest: list[str]) -> str:
    index = 0
    while index < len(rest):
        word = rest[index]
        if word == "-m" and index + 1 < len(rest):
            return rest[index + 1]
        if word.startswith("-m") and len(word) > 2 and not word.startswith("--"):
            return word[2:]
        if word in ("-c", "-e", "--eval", "-p", "--print"):
            return os.path.splitext(program)[0]
        if word == "--":
            index += 1
            break
        if word.startswith("-"):
            index += 2 if word in INTERPRETER_OPTIONS_WITH_ARGUMENT else 1
            continue
        if program.startswith("coverage") and word in ("run", "debug", "report"):
            index += 1
            continue
        break
    if index < len(rest):
        return _stem(rest[index])
    return os.path.splitext(program)[0]


def derive_name(command: str | None, argv: Sequence[str] | None) -> str:
    """Return the sanitised command name of a shell command line or of an argv."""
    if argv:
        groups = [list(argv)]
    else:
        groups = simple_commands(split_shell_words(command or ""))
    first_word = None
    for words in groups:
        name = name_of_words(words)
        if name:
            return sanitise(name)
        if first_word is None:
            remaining = _skip_options(words, ())
            first_word = _stem(remaining[0]) if remaining else None
    return sanitise(first_word or "job")


def sanitise(name: str) -> str:
    """Turn any text into one safe file-name segment of at most MAX_NAME_LENGTH characters."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    text = re.sub(r"\.{2,}", "_", text)
    text = text.strip("._-")[:MAX_NAME_LENGTH].rstrip("._-")
    return text or "job"


def validate_segment(value: str, what: str, option: str) -> str:
    """Check that a user-given category or name is a safe folder or file name, or raise."""
    if not isinstance(value, str) or not value:
        raise UsageError(f"invalid {what} {value!r}: it must not be empty; pass {option} with a name such as 'training'")
    if value in RESERVED_FOLDERS:
        raise UsageError(
            f"invalid {what} {value!r}: the name is reserved for bgrun's own folders "
            f"({', '.join(sorted(RESERVED_FOLDERS))}); choose another {option}"
        )
    if "/" in value or "\\" in value or value.startswith(".") or ".." in value or os.path.isabs(value):
        raise UsageError(
            f"invalid {what} {value!r}: it would leave the log root; use a plain name of letters, "
            f"digits, '.', '_' and '-' with {option}"
        )
    if len(value) > MAX_NAME_LENGTH or not SAFE_SEGMENT.match(value):
        raise UsageError(
            f"invalid {what} {value!r}: use at most {MAX_NAME_LENGTH} letters, digits, '.', '_' "
            f"and '-', starting with a letter or digit, with {option}"
        )
    return value


def guess_category(name: str, command: str | None, argv: Sequence[str] | None,
                   rules: Sequence[tuple[str, str]], default: str) -> str:
    """Return the category of the first rule whose glob matches the name or a command word."""
    words = list(argv) if argv else split_shell_words(command or "")
    candidates = [name] + [_stem(word) for word in words if word not in SHELL_OPERATORS]
    for pattern, category in rules:
        for candidate in candidates:
            if fnmatch.fnmatchcase(candidate, pattern):
                return category
    return default
