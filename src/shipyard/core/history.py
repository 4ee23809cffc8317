"""Comparing runs, and what has changed since a run (for ``runs diff`` and ``reproduce``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.core import environment
from shipyard.core._closure import closure_of
from shipyard.core.cache import code_hash

if TYPE_CHECKING:
    from shipyard.core.pipeline import Pipeline
    from shipyard.core.project import Project
    from shipyard.core.run import Run

Change = dict[str, Any]  # {"what", "name", "a", "b"}


def diff_runs(a: Run, b: Run) -> list[Change]:
    """Every difference between two runs: params, code, environment and metrics."""
    changes: list[Change] = []
    changes += _compare("param", a.params, b.params)
    changes += _compare("seed", {"seed": a.seed}, {"seed": b.seed})
    changes += _compare("code", _code(a), _code(b))
    changes += _compare("env", _env(a), _env(b))
    changes += _compare("metric", a.metrics, b.metrics)
    return changes


def drift_since(run: Run, pipeline: Pipeline, project: Project) -> list[Change]:
    """What differs now from when ``run`` ran: git state, step code, Python, packages."""
    dag = pipeline.build(run.params)
    steps_now = {name: code_hash(inv.step) for name, inv in dag.invocations.items()}
    packages: dict[str, str] = {}
    for inv in dag.invocations.values():
        packages.update(closure_of(inv.step.fn).packages)
    now = {
        **environment.git_state(project.root),
        "environment": environment.environment(project.root, packages),
    }
    then_code = _code(run)
    now_code = {
        "git commit": now["git_commit"],
        "uncommitted changes": now["git_diff_hash"] if now["git_dirty"] else None,
        **{f"step {name}": h for name, h in steps_now.items()},
    }
    then_env = _env(run)
    now_env = _flatten_env(now["environment"])
    # Only packages the run recorded can be compared; new ones are listed as added.
    return _compare("code", then_code, now_code) + _compare("env", then_env, now_env)


def _code(run: Run) -> dict[str, Any]:
    return {
        "git commit": run.git_commit,
        "uncommitted changes": run.git_diff_hash if run.git_dirty else None,
        **{f"step {s.name}": s.code_hash for s in run.step_runs.values() if s.code_hash},
    }


def _env(run: Run) -> dict[str, Any]:
    return _flatten_env(run.environment)


def _flatten_env(env: dict[str, Any]) -> dict[str, Any]:
    flat = {k: env.get(k) for k in ("python", "platform") if env.get(k) is not None}
    flat.update({f"package {k}": v for k, v in (env.get("packages") or {}).items()})
    return flat


def _compare(what: str, a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    return [
        {"what": what, "name": key, "a": a.get(key), "b": b.get(key)}
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key)
    ]
