"""Hypothesis fuzzing of every bgrun/* method's params against one real server per method.

Every request must get a result or a JSON-RPC error that is not an internal error, and the
server must respond to a valid request afterwards. Commands are drawn from harmless programs
(true, echo, :) so that a request that passes validation starts nothing that matters.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bgrun import schema

EXAMPLES_PER_METHOD = 60
EXPECTED_CODES = {-32600, -32602, 1, 2, 3, 4, 5}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**63) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=8,
)


def field_strategies(project) -> dict[str, st.SearchStrategy]:
    """Return, per wire field, a mix of plausible values, edge cases and arbitrary JSON."""
    text = st.text(max_size=80)
    paths = st.sampled_from([str(project.root), "sub", "/no/such/folder", "../..", "", " ", "/etc", "~"]) | text
    seconds = st.floats(min_value=-1, max_value=1e12, allow_nan=False) | st.integers(min_value=-5, max_value=10**20)
    return {
        "command": st.sampled_from(["true", "echo fuzz", ": nothing", "echo 'quoted \\' text'", "   "]),
        "argv": st.lists(text, max_size=3).map(lambda rest: ["echo", *rest]) | st.just(["true"]) | st.just([]),
        "cwd": paths,
        "category": st.sampled_from(["training", "../../etc", ".bgrun", "errors", "a/b", "x" * 100]) | text,
        "name": st.sampled_from(["train", "../up", "-dash", "ok.name"]) | text,
        "delay": seconds,
        "retries": st.integers(min_value=-5, max_value=5000),
        "env": st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,7}", fullmatch=True), text, max_size=3)
               | st.dictionaries(text, text, max_size=2),
        "envFile": st.sampled_from(["/etc/hostname", ".env", "/no/such/.env"]) | text,
        "environment": st.sampled_from(["/usr", "/no/such/venv"]) | text,
        "id": st.integers(min_value=1, max_value=4) | st.sampled_from(["1", "2", "007", "0", "../../etc/passwd", "9" * 30])
              | st.integers(min_value=-5, max_value=40) | text,
        "logRoot": st.sampled_from([str(project.log_root), str(project.log_root), "/etc", "../..", str(project.root)]) | text,
        "grace": seconds,
        "states": st.lists(st.sampled_from([*schema.STATES, "bogus", ""]), max_size=4),
        "category_filter": text,
        "folder": st.sampled_from([project.root.as_uri(), str(project.root), "file:///nowhere", "vscode-remote://x/y"]) | text,
        "limit": st.integers(min_value=-5, max_value=2_000_000),
        "repair": st.booleans(),
    }


METHOD_FIELDS = {
    "bgrun/run": ["command", "argv", "cwd", "category", "name", "delay", "retries", "env", "envFile", "environment"],
    "bgrun/preview": ["command", "argv", "cwd", "category", "name", "delay", "retries", "env", "envFile", "environment"],
    "bgrun/list": ["states", "category", "folder", "logRoot", "limit"],
    "bgrun/get": ["id", "logRoot"],
    "bgrun/stop": ["id", "logRoot", "grace"],
    "bgrun/rerun": ["id", "logRoot", "delay"],
    "bgrun/remove": ["id", "logRoot"],
    "bgrun/check": ["repair", "logRoot"],
}


def params_strategy(method: str, project) -> st.SearchStrategy:
    """Return params that are mostly well typed, so that most requests reach the engine."""
    fields = field_strategies(project)
    names = METHOD_FIELDS[method]
    typed = {name: fields["category_filter" if method == "bgrun/list" and name == "category" else name]
             for name in names}
    required: dict[str, st.SearchStrategy] = {}
    if method in ("bgrun/run", "bgrun/preview"):
        program = st.sampled_from(["command", "argv"])
        well_typed = program.flatmap(lambda key: st.fixed_dictionaries(
            {key: typed[key]}, optional={name: typed[name] for name in names if name not in ("command", "argv")}))
    else:
        if "id" in typed:
            required["id"] = typed["id"]
        well_typed = st.fixed_dictionaries(required, optional={k: v for k, v in typed.items() if k not in required})
    any_typed = st.fixed_dictionaries({}, optional={name: strategy | json_values for name, strategy in typed.items()})
    with_extra = st.builds(lambda known, extra: {**extra, **known}, any_typed,
                           st.dictionaries(st.text(max_size=8), json_values, max_size=2))
    return st.one_of(*[well_typed] * 6, any_typed, with_extra, json_values)


@pytest.mark.parametrize("method", list(METHOD_FIELDS))
def test_fuzzed_params_never_break_server(method, raw_server, project):
    server = raw_server()
    server.initialize()
    for command in ("echo seed one", "echo seed two"):
        server.request("bgrun/run", {"command": command, "delay": 0})

    @settings(max_examples=EXAMPLES_PER_METHOD, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(params=params_strategy(method, project))
    def check(params):
        response = server.request(method, params)

        if "error" in response:
            assert response["error"]["code"] in EXPECTED_CODES, response["error"]
            assert len(response["error"]["message"]) < 4000
        else:
            assert "result" in response
        server.assert_alive()

    check()


def test_fuzzed_methods_never_break_server(raw_server):
    server = raw_server()
    server.initialize()
    known = set(METHOD_FIELDS) | {"initialize", "shutdown", "exit"}

    @settings(max_examples=EXAMPLES_PER_METHOD, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(method=st.text(min_size=1, max_size=30).filter(lambda name: name not in known), params=json_values)
    def check(method, params):
        response = server.request(method, params)

        if "error" in response:
            assert response["error"]["code"] in {-32601, -32602, -32600}, response["error"]
        server.assert_alive()

    check()
