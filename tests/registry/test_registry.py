"""The model registry: versions, references, gates, aliases, rollback, audit log, concurrency."""

from __future__ import annotations

import itertools
import multiprocessing
import random
import threading
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard import pipeline, step
from shipyard.core.project import Project
from shipyard.errors import (
    ArtifactNotFoundError,
    ModelNotFoundError,
    PromotionRefusedError,
    RegistryError,
)
from shipyard.registry._aliases import rollback_target
from shipyard.registry.registry import AliasEvent, ModelVersion, RegisteredModel, Registry


@step(cache=False)
def train(c: float) -> dict[str, float]:
    return {"coef": c}


@pipeline
def training(c: float = 1.0):
    return train(c)


@pytest.fixture
def registry(project: Project, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setenv("SHIPYARD_ACTOR", "alice")
    return Registry(project)


@pytest.fixture
def artifact_id(project: Project) -> str:
    """A model artifact stored by a real run."""
    return training(c=0.5).step_runs["train"].outputs["output"].id


def _versions(registry: Registry, artifact_id: str, name: str, count: int) -> None:
    for _ in range(count):
        registry.register(name, artifact_id=artifact_id)


def _gated(registry: Registry, artifact_id: str, count: int) -> None:
    """``count`` versions of "fraud", each with a passing gate record."""
    for version in range(1, count + 1):
        registry.register("fraud", artifact_id=artifact_id)
        registry.record_gate("fraud", version, {"value": version}, passed=True)


def _trail(events: list[AliasEvent]) -> list[tuple[object, ...]]:
    return [(e.alias, e.action, e.version, e.previous_version) for e in events]


# -- versions and references ------------------------------------------------------------


def test_register_numbers_versions_per_model_and_keeps_what_it_was_given(
    project: Project, registry: Registry, artifact_id: str
) -> None:
    run = project.metadata.get_artifact(artifact_id)
    first = registry.register(
        "fraud",
        artifact_id=artifact_id[:12],
        lineage={"contracts": {"transactions": "1.2.0"}, "git_commit": "abc123"},
        evaluation={"auc": 0.91},
        description="first try",
    )
    second = registry.register("fraud", artifact_id=artifact_id, run_id="r" * 32)
    other = registry.register("churn", artifact_id=artifact_id)

    assert (first.ref, second.ref, other.ref) == ("fraud:1", "fraud:2", "churn:1")
    assert first == ModelVersion(
        name="fraud",
        version=1,
        artifact_id=artifact_id,
        run_id=run["run_id"],
        step_run_id=run["step_run_id"],
        created_at=first.created_at,
        description="first try",
        lineage={"contracts": {"transactions": "1.2.0"}, "git_commit": "abc123"},
        evaluation={"auc": 0.91},
    )
    assert (second.run_id, second.step_run_id, second.lineage, second.evaluation) == (
        "r" * 32,
        run["step_run_id"],
        {},
        None,
    )
    assert registry.versions("fraud") == [first, second]


def test_numpy_numbers_in_lineage_and_evaluation_are_kept_as_numbers(
    registry: Registry, artifact_id: str
) -> None:
    registry.register(
        "fraud",
        artifact_id=artifact_id,
        lineage={"rows": np.int64(1000), "when": date(2024, 5, 1)},
        evaluation={"auc": np.float32(0.5), "recall": np.float64(0.25)},
    )
    found = registry.get("fraud")
    assert found.lineage == {"rows": 1000, "when": "2024-05-01"}
    assert found.evaluation == {"auc": 0.5, "recall": 0.25}


def test_models_lists_each_model_with_its_latest_version_and_aliases(
    registry: Registry, artifact_id: str
) -> None:
    _gated(registry, artifact_id, 2)
    _versions(registry, artifact_id, "churn", 1)
    registry.promote("fraud", 1, "staging")
    registry.promote("fraud", 2)

    models = registry.models()

    assert [(m.name, m.owner, m.latest_version, dict(m.aliases)) for m in models] == [
        ("churn", "tests", 1, {}),
        ("fraud", "tests", 2, {"production": 2, "staging": 1}),
    ]
    assert isinstance(models[0], RegisteredModel)


def test_a_version_is_found_by_alias_by_number_and_as_the_latest(
    registry: Registry, artifact_id: str
) -> None:
    _gated(registry, artifact_id, 3)
    registry.promote("fraud", 2)
    registry.promote("fraud", 2, "staging")

    assert registry.get("fraud@production").version == 2
    assert registry.get("fraud@production").aliases == ("production", "staging")
    assert registry.get("fraud:1").version == 1
    assert registry.get("fraud:1").aliases == ()
    assert registry.get("fraud").version == 3
    assert [v.aliases for v in registry.versions("fraud")] == [(), ("production", "staging"), ()]


def test_the_registered_model_object_loads_back(registry: Registry, artifact_id: str) -> None:
    registry.register("fraud", artifact_id=artifact_id)
    assert registry.load("fraud:1") == {"coef": 0.5}


def test_an_unknown_model_lists_the_registered_ones(registry: Registry, artifact_id: str) -> None:
    with pytest.raises(ModelNotFoundError) as empty:
        registry.get("fraud")
    assert str(empty.value) == (
        "No model named 'fraud' is registered; no model is registered yet. "
        "Register one with Registry(project).register(name, artifact_id=...)."
    )
    _versions(registry, artifact_id, "fraud", 1)
    _versions(registry, artifact_id, "churn", 1)
    message = "No model named 'frod' is registered. Registered models: churn, fraud."
    for call in (
        lambda: registry.get("frod@production"),
        lambda: registry.versions("frod"),
        lambda: registry.history("frod"),
        lambda: registry.promote("frod", 1, force=True, reason="x"),
        lambda: registry.record_gate("frod", 1, {}, passed=True),
    ):
        with pytest.raises(ModelNotFoundError) as found:
            call()
        assert str(found.value) == message


def test_an_unknown_version_or_alias_lists_the_versions_and_aliases(
    registry: Registry, artifact_id: str
) -> None:
    _gated(registry, artifact_id, 3)
    with pytest.raises(ModelNotFoundError) as no_alias:
        registry.get("fraud@production")
    assert str(no_alias.value) == (
        "Model 'fraud' has no alias 'production'. It has versions 1 to 3 and no aliases; "
        "promote one with Registry.promote('fraud', ...)."
    )
    registry.promote("fraud", 2)
    registry.promote("fraud", 3, "staging")
    contents = "It has versions 1 to 3 and the aliases production -> 2, staging -> 3."
    for ref, problem in (("fraud:4", "no version 4"), ("fraud:0", "no version 0")):
        with pytest.raises(ModelNotFoundError) as found:
            registry.get(ref)
        assert str(found.value) == f"Model 'fraud' has {problem}. {contents}"
    with pytest.raises(ModelNotFoundError) as found:
        registry.get("fraud@prod")
    assert str(found.value) == f"Model 'fraud' has no alias 'prod'. {contents}"
    with pytest.raises(ModelNotFoundError, match=r"after ':' comes a version number"):
        registry.get("fraud:latest")


def test_register_refuses_an_unknown_artifact_and_a_name_a_reference_cannot_hold(
    registry: Registry, artifact_id: str
) -> None:
    with pytest.raises(ArtifactNotFoundError, match="No artifact matches 'nope'"):
        registry.register("fraud", artifact_id="nope")
    for name in ("fraud@x", "fraud:2", "", "-fraud", "a b"):
        with pytest.raises(RegistryError, match=f"{name!r} is not a valid model name"):
            registry.register(name, artifact_id=artifact_id)
    assert registry.models() == []


# -- gates and promotion ----------------------------------------------------------------


def test_gate_records_are_listed_newest_first(registry: Registry, artifact_id: str) -> None:
    _versions(registry, artifact_id, "fraud", 2)
    first = registry.record_gate("fraud", 1, {"value": 10.5, "reasons": []}, passed=True)
    second = registry.record_gate("fraud", 1, {"value": -3}, passed=False)
    registry.record_gate("fraud", 2, {}, passed=True)

    gates = registry.gates("fraud", 1)

    assert [(g["id"], g["passed"], g["record"]) for g in gates] == [
        (second, False, {"value": -3}),
        (first, True, {"value": 10.5, "reasons": []}),
    ]
    assert {(g["name"], g["version"]) for g in gates} == {("fraud", 1)}


def test_promotion_without_a_gate_record_is_refused(registry: Registry, artifact_id: str) -> None:
    _versions(registry, artifact_id, "fraud", 1)
    with pytest.raises(PromotionRefusedError) as refused:
        registry.promote("fraud", 1)
    assert str(refused.value) == (
        "fraud:1 has no gate record, so it cannot be promoted. Evaluate it and record the "
        "gate with Registry.record_gate(...), or pass force=True with a reason."
    )
    assert registry.history("fraud") == []


def test_promotion_is_refused_when_the_newest_gate_record_failed(
    registry: Registry, artifact_id: str
) -> None:
    _versions(registry, artifact_id, "fraud", 1)
    older = registry.record_gate("fraud", 1, {}, passed=True)
    newest = registry.record_gate("fraud", 1, {}, passed=False)

    with pytest.raises(PromotionRefusedError) as refused:
        registry.promote("fraud", 1)
    assert str(refused.value) == (
        f"The newest gate record of fraud:1 (id {newest}) failed, so it cannot be promoted. "
        "Record a passing gate, or pass force=True with a reason to override it."
    )
    with pytest.raises(PromotionRefusedError, match=rf"The gate record of fraud:1 \(id {newest}"):
        registry.promote("fraud", 1, gate_id=newest)
    assert registry.promote("fraud", 1, gate_id=older).gate_id == older


def test_a_passing_gate_promotes_and_the_event_says_who_why_and_on_which_gate(
    registry: Registry, artifact_id: str
) -> None:
    _versions(registry, artifact_id, "fraud", 1)
    gate = registry.record_gate("fraud", 1, {"value": 1.0}, passed=True)

    event = registry.promote("fraud", 1, reason="beats the baseline")

    assert event == AliasEvent(
        id=event.id,
        name="fraud",
        alias="production",
        action="set",
        version=1,
        previous_version=None,
        actor="alice",
        reason="beats the baseline",
        gate_id=gate,
        forced=False,
        created_at=event.created_at,
    )
    assert registry.get("fraud@production").version == 1


def test_a_gate_record_of_another_version_is_refused(registry: Registry, artifact_id: str) -> None:
    _gated(registry, artifact_id, 2)
    gate_of_1 = registry.gates("fraud", 1)[0]["id"]
    gate_of_2 = registry.gates("fraud", 2)[0]["id"]
    with pytest.raises(PromotionRefusedError) as refused:
        registry.promote("fraud", 2, gate_id=gate_of_1)
    assert str(refused.value) == (
        f"Gate record {gate_of_1!r} is not a record of fraud:2 (it is about fraud:1). "
        f"The gate records of fraud:2: {gate_of_2}."
    )
    with pytest.raises(PromotionRefusedError, match="Gate record '999' is not a record"):
        registry.promote("fraud", 2, gate_id="999")


def test_force_needs_a_reason_and_is_recorded_as_forced(
    registry: Registry, artifact_id: str
) -> None:
    _versions(registry, artifact_id, "fraud", 1)
    failed = registry.record_gate("fraud", 1, {}, passed=False)
    for reason in ("", "   "):
        with pytest.raises(PromotionRefusedError) as refused:
            registry.promote("fraud", 1, force=True, reason=reason)
        assert str(refused.value) == (
            "Promoting fraud:1 with force=True skips its gate, so a reason is required: "
            "pass reason='...' saying why (it is kept in the audit log)."
        )

    event = registry.promote("fraud", 1, force=True, reason="hotfix for incident 42", actor="bob")

    assert (event.forced, event.gate_id, event.actor, event.reason) == (
        True,
        failed,
        "bob",
        "hotfix for incident 42",
    )
    assert registry.get("fraud@production").version == 1


def test_an_alias_name_must_be_lowercase_letters_digits_dash_underscore(
    registry: Registry, artifact_id: str
) -> None:
    _gated(registry, artifact_id, 1)
    for alias in ("Production", "1st", "a" * 64, "pro duction", ""):
        with pytest.raises(PromotionRefusedError, match=f"{alias!r} is not a valid alias name"):
            registry.promote("fraud", 1, alias)
    assert registry.promote("fraud", 1, "shadow-eu_2").alias == "shadow-eu_2"
    assert registry.promote("fraud", 1, "a" * 63).alias == "a" * 63


def test_promoting_the_version_an_alias_holds_records_nothing(
    registry: Registry, artifact_id: str
) -> None:
    _gated(registry, artifact_id, 1)
    first = registry.promote("fraud", 1, reason="first")
    again = registry.promote("fraud", 1, reason="again")

    assert again == first
    assert len(registry.history("fraud")) == 1


def test_the_actor_defaults_to_the_login_name(
    registry: Registry, artifact_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _gated(registry, artifact_id, 1)
    monkeypatch.delenv("SHIPYARD_ACTOR")
    monkeypatch.setattr("getpass.getuser", lambda: "carol")
    assert registry.promote("fraud", 1).actor == "carol"


# -- removal, rollback, audit log ----------------------------------------------------------


def test_remove_alias_unsets_it_and_keeps_what_it_pointed_at(
    registry: Registry, artifact_id: str
) -> None:
    _gated(registry, artifact_id, 2)
    registry.promote("fraud", 2)

    event = registry.remove_alias("fraud", "production", reason="retired")

    assert (event.action, event.version, event.previous_version, event.reason) == (
        "removed",
        None,
        2,
        "retired",
    )
    with pytest.raises(ModelNotFoundError, match="has no alias 'production'"):
        registry.get("fraud@production")
    with pytest.raises(ModelNotFoundError) as again:
        registry.remove_alias("fraud", "production")
    assert str(again.value) == (
        "Model 'fraud' has no alias 'production'. It has versions 1 to 2 and no aliases; "
        "promote one with Registry.promote('fraud', ...)."
    )


def test_rollbacks_walk_back_through_the_promotions(registry: Registry, artifact_id: str) -> None:
    _gated(registry, artifact_id, 4)
    for version in (1, 2, 3):
        registry.promote("fraud", version)

    first = registry.rollback("fraud", reason="latency regression")
    assert (first.action, first.version, first.previous_version) == ("rollback", 2, 3)
    assert registry.get("fraud@production").version == 2
    assert registry.rollback("fraud").version == 1
    with pytest.raises(PromotionRefusedError) as refused:
        registry.rollback("fraud")
    assert str(refused.value) == (
        "fraud@production has nothing to roll back to: it points at version 1, where it was "
        "first set, and every later move has been rolled back. Promote another version "
        "instead, or remove the alias."
    )

    registry.promote("fraud", 4)  # a promotion after rollbacks is the first to be undone
    assert registry.rollback("fraud").version == 1
    assert registry.get("fraud@production").version == 1


def test_a_rollback_after_a_promotion_returns_to_the_version_before_it(
    registry: Registry, artifact_id: str
) -> None:
    _gated(registry, artifact_id, 3)
    registry.promote("fraud", 1)
    registry.promote("fraud", 3)
    registry.rollback("fraud")  # 3 -> 1
    registry.promote("fraud", 2)

    assert registry.rollback("fraud").version == 1
    with pytest.raises(PromotionRefusedError, match="nothing to roll back to"):
        registry.rollback("fraud")


def test_a_rollback_needs_an_alias_that_moved(registry: Registry, artifact_id: str) -> None:
    _gated(registry, artifact_id, 2)
    with pytest.raises(ModelNotFoundError, match="Model 'fraud' has no alias 'production'"):
        registry.rollback("fraud")
    registry.promote("fraud", 1)
    with pytest.raises(PromotionRefusedError) as refused:
        registry.rollback("fraud")
    assert str(refused.value).startswith(
        "fraud@production has nothing to roll back to: it points at version 1, where it was "
        "first set. Promote"
    )
    registry.promote("fraud", 2)
    registry.remove_alias("fraud", "production")
    registry.promote("fraud", 2)
    with pytest.raises(PromotionRefusedError, match="nothing to roll back to"):
        registry.rollback("fraud")  # what came before the removal is not walked back to


def test_the_audit_log_keeps_every_change_oldest_first(
    registry: Registry, artifact_id: str
) -> None:
    _gated(registry, artifact_id, 3)
    gate_of_3 = registry.gates("fraud", 3)[0]["id"]
    registry.promote("fraud", 1, reason="launch")
    registry.promote("fraud", 2, "staging", actor="bob")
    registry.promote("fraud", 3, reason="better", gate_id=gate_of_3)
    registry.rollback("fraud", reason="alerts")
    registry.remove_alias("fraud", "staging", actor="bob", reason="done")

    log = registry.history("fraud")

    assert [
        (e.alias, e.action, e.version, e.previous_version, e.actor, e.reason, e.forced) for e in log
    ] == [
        ("production", "set", 1, None, "alice", "launch", False),
        ("staging", "set", 2, None, "bob", "", False),
        ("production", "moved", 3, 1, "alice", "better", False),
        ("production", "rollback", 1, 3, "alice", "alerts", False),
        ("staging", "removed", None, 2, "bob", "done", False),
    ]
    assert [e.gate_id for e in log] == [
        registry.gates("fraud", 1)[0]["id"],
        registry.gates("fraud", 2)[0]["id"],
        gate_of_3,
        None,
        None,
    ]
    assert [e.id for e in log] == sorted(e.id for e in log)
    assert _trail(registry.history("fraud", "staging")) == [
        ("staging", "set", 2, None),
        ("staging", "removed", None, 2),
    ]
    assert registry.history("fraud", "shadow") == []


@given(st.lists(st.sampled_from(["promote", "rollback"]), max_size=30), st.randoms())
def test_rollback_undoes_promotions_like_a_stack(operations: list[str], rng: random.Random) -> None:
    """The target read from the log equals an explicit stack of the versions held."""
    events: list[dict[str, object]] = []
    stack: list[int] = []
    for operation in operations:
        target = rollback_target(events)
        if operation == "rollback":
            assert target == (stack[-2] if len(stack) > 1 else None)
            if target is not None:
                events.append({"action": "rollback", "previous_version": stack.pop()})
            continue
        version = rng.choice([v for v in range(1, 6) if not stack or v != stack[-1]])
        action = "moved" if stack else "set"
        events.append({"action": action, "previous_version": stack[-1] if stack else None})
        stack.append(version)


# -- concurrency ----------------------------------------------------------------------------


def _promote_many(registry: Registry, worker: int, rounds: int) -> list[int]:
    """Promote versions 1-4 of "fraud" in turn; the ids of the events this worker recorded
    (a promotion to the version the alias already holds records none)."""
    mine = []
    for i in range(rounds):
        reason = f"worker {worker} round {i}"
        event = registry.promote("fraud", 1 + (worker + i) % 4, reason=reason)
        if event.reason == reason:
            mine.append(event.id)
    return mine


def _register_and_promote(root: str, worker: int, rounds: int) -> list[int]:
    """In a process of its own: three new versions, then ``rounds`` promotions."""
    project = Project.discover(Path(root))
    registry = Registry(project)
    artifact = registry.get("fraud:1").artifact_id
    for _ in range(3):
        registry.register("fraud", artifact_id=artifact)
    try:
        return _promote_many(registry, worker, rounds)
    finally:
        project.metadata.close()


def _assert_consistent(registry: Registry, recorded: list[int]) -> None:
    log = registry.history("fraud", "production")
    assert sorted(recorded) == [e.id for e in log]  # every recorded change is in the log
    assert log[0].previous_version is None
    for before, after in itertools.pairwise(log):
        assert after.previous_version == before.version
        assert after.version != before.version
    assert registry.get("fraud@production").version == log[-1].version


def test_concurrent_promotions_in_threads_never_lose_an_update(
    registry: Registry, artifact_id: str
) -> None:
    _gated(registry, artifact_id, 4)
    results: list[list[int]] = [[] for _ in range(8)]
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            results[worker] = _promote_many(registry, worker, 25)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    recorded = [event for worker in results for event in worker]
    assert len(recorded) > 8
    _assert_consistent(registry, recorded)


def test_concurrent_registers_and_promotions_in_processes_never_collide(
    registry: Registry, artifact_id: str, project_dir: Path
) -> None:
    _gated(registry, artifact_id, 4)
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        jobs = [(str(project_dir), n, 30) for n in range(4)]
        results = pool.starmap(_register_and_promote, jobs)

    assert [v.version for v in registry.versions("fraud")] == list(range(1, 4 + 4 * 3 + 1))
    _assert_consistent(registry, [event for worker in results for event in worker])


def test_concurrent_registers_in_threads_never_share_a_version_number(
    registry: Registry, artifact_id: str
) -> None:
    errors: list[BaseException] = []
    made: list[int] = []

    def work() -> None:
        try:
            for _ in range(10):
                made.append(registry.register("fraud", artifact_id=artifact_id).version)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(made) == list(range(1, 81))
    assert [v.version for v in registry.versions("fraud")] == list(range(1, 81))


def test_a_versions_evaluation_comes_from_its_registration_else_its_newest_gate(
    registry: Registry, artifact_id: str
) -> None:
    registered = registry.register("fraud", artifact_id=artifact_id, evaluation={"threshold": 0.3})
    bare = registry.register("fraud", artifact_id=artifact_id)
    assert registry.evaluation(bare) is None
    registry.record_gate("fraud", 2, {"evaluation": {"threshold": 0.1}}, passed=False)
    registry.record_gate("fraud", 2, {"evaluation": {"threshold": 0.2}}, passed=True)

    assert registry.evaluation(registered) == {"threshold": 0.3}
    assert registry.evaluation(registry.get("fraud:2")) == {"threshold": 0.2}


def test_a_gate_judged_against_an_older_production_model_is_stale(
    registry: Registry, artifact_id: str
) -> None:
    for _ in range(3):
        registry.register("fraud", artifact_id=artifact_id)
    registry.record_gate("fraud", 1, {"baseline": None}, passed=True)
    registry.record_gate("fraud", 2, {"baseline": None}, passed=True)  # judged before v1 won
    registry.record_gate(
        "fraud", 3, {"baseline": "fraud:1", "against": "fraud@production"}, passed=True
    )
    registry.promote("fraud", 1)

    with pytest.raises(
        PromotionRefusedError,
        match="compared it with no model, but the alias now points at version 1",
    ):
        registry.promote("fraud", 2)
    registry.promote("fraud", 3)  # judged against the model that holds production
    assert registry.get("fraud@production").version == 3
    registry.promote("fraud", 2, force=True, reason="hotfix")  # force still overrides
    assert registry.get("fraud@production").version == 2
