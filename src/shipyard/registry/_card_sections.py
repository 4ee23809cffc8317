"""The sections of a model card, built from its recorded facts (see ``card.py``)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shipyard.registry._card_render import Code, Fields, Section, Table, Text, Verdict

if TYPE_CHECKING:
    from shipyard.registry.card import ModelCard

NOT_STATED = "not stated"
NOT_RECORDED = "not recorded"
NOT_EVALUATED = "Not evaluated: this version was registered without an evaluation."

HEADLINE = (
    ("roc_auc", "ROC AUC"),
    ("average_precision", "Average precision"),
    ("log_loss", "Log loss"),
    ("brier", "Brier score"),
    ("accuracy", "Accuracy"),
    ("precision", "Precision"),
    ("recall", "Recall"),
    ("f1", "F1"),
    ("selection_rate", "Selection rate"),
    ("fpr", "False positive rate"),
    ("expected_calibration_error", "Expected calibration error"),
    ("latency_ms_p50", "Latency p50 (ms, one row)"),
    ("latency_ms_p99", "Latency p99 (ms, one row)"),
)
SLICE_COLUMNS = ("count", "positives", "roc_auc", "precision", "recall", "fpr", "value_per_1000")
GROUP_COLUMNS = ("count", "selection_rate", "tpr", "fpr")
RATES = frozenset({"accuracy", "precision", "recall", "f1", "selection_rate", "tpr", "fpr"})
COUNTS = frozenset({"count", "positives"})


def build(card: ModelCard) -> list[Section]:
    """Every section, in reading order."""
    evaluation = card.evaluation
    return [
        _model(card),
        _owners(card),
        _use(card),
        _data(card.lineage),
        _features(card.lineage),
        _metrics(evaluation),
        _value(evaluation),
        _fairness(evaluation),
        _gate(card.gate),
        _lineage(card),
        _reproduce(card.run),
    ]


def _model(card: ModelCard) -> Section:
    return Section(
        "Model",
        [
            Fields(
                [
                    ("Model", card.name),
                    ("Version", str(card.version)),
                    ("Reference", card.ref),
                    ("Aliases", ", ".join(card.aliases) or "none"),
                    ("Registered", _when(card.created_at)),
                ]
            )
        ],
    )


def _owners(card: ModelCard) -> Section:
    project = card.project
    contacts = ", ".join(project.get("contacts") or ()) or NOT_STATED
    items = [
        ("Project", str(project.get("name") or NOT_STATED)),
        ("Owner team", str(project.get("owner") or NOT_STATED)),
        ("Contacts", contacts),
    ]
    return Section("Owners", [Fields(items)])


def _use(card: ModelCard) -> Section:
    items = [
        ("Intended use", str(card.project.get("description") or NOT_STATED)),
        ("This version", card.description or NOT_STATED),
        ("Known limits", _plain(card.lineage.get("limits")) or NOT_STATED),
    ]
    return Section("Intended use and limits", [Fields(items)])


def _data(lineage: Mapping[str, Any]) -> Section:
    contracts = lineage.get("contracts")
    blocks: list[Any] = []
    if isinstance(contracts, Mapping) and contracts:
        rows = [(str(name), _plain(version)) for name, version in contracts.items()]
        blocks.append(Table(("Data contract", "Version"), rows))
    else:
        blocks.append(Fields([("Data contracts", _plain(contracts) or NOT_RECORDED)]))
    blocks.append(Fields([("Training window", _window(lineage.get("training_window")))]))
    return Section("Data", blocks)


def _window(window: Any) -> str:
    if isinstance(window, Mapping) and ("start" in window or "end" in window):
        start, end = window.get("start"), window.get("end")
        return f"{start if start is not None else '…'} to {end if end is not None else '…'}"
    return _plain(window) or NOT_RECORDED


def _features(lineage: Mapping[str, Any]) -> Section:
    views = lineage.get("feature_views")
    blocks: list[Any] = []
    if isinstance(views, Mapping) and views:
        rows = [(str(name), _plain(version)) for name, version in views.items()]
        blocks.append(Table(("Feature view", "Version"), rows))
    else:
        blocks.append(Fields([("Feature views", _plain(views) or NOT_RECORDED)]))
    blocks.append(Fields([("Input features", _plain(lineage.get("features")) or NOT_RECORDED)]))
    return Section("Features", blocks)


def _metrics(evaluation: Mapping[str, Any] | None) -> Section:
    if evaluation is None:
        return Section("Metrics", [Text(NOT_EVALUATED, quiet=True)])
    metrics = evaluation.get("metrics") or {}
    overall = metrics.get("overall") or {}
    rows_used = evaluation.get("rows") or {}
    headline = [(label, _number(name, overall.get(name))) for name, label in HEADLINE]
    slices = [("overall", overall), *(metrics.get("slices") or {}).items()]
    head = ("Slice", *(f"#{name.replace('_', ' ')}" for name in SLICE_COLUMNS))
    caption = f"On {_count(rows_used.get('test'))} test rows, at threshold "
    caption += f"{_number('threshold', evaluation.get('threshold'))}."
    return Section(
        "Metrics",
        [
            Table(("Metric", "#Value"), headline, caption=caption),
            Table(head, [_slice_row(str(name), found or {}) for name, found in slices]),
        ],
    )


def _slice_row(name: str, found: Mapping[str, Any]) -> list[str]:
    if found.get("note"):
        blanks = [""] * (len(SLICE_COLUMNS) - 2)
        return [name, _count(found.get("count")), str(found["note"]), *blanks]
    return [name, *(_number(column, found.get(column)) for column in SLICE_COLUMNS)]


def _value(evaluation: Mapping[str, Any] | None) -> Section:
    if evaluation is None:
        return Section("Business value", [Text(NOT_EVALUATED, quiet=True)])
    overall = (evaluation.get("metrics") or {}).get("overall") or {}
    validation = evaluation.get("validation") or {}
    threshold = _number("threshold", evaluation.get("threshold"))
    items = [
        ("Threshold", f"{threshold}, tuned on the validation rows"),
        (f"Value per 1,000 at {threshold}", _number("", overall.get("value_per_1000"))),
        ("Value per 1,000 at 0.5", _number("", overall.get("value_per_1000_at_0_5"))),
        ("Value per 1,000 on validation", _number("", validation.get("value_per_1000"))),
    ]
    return Section("Business value", [Fields(items)])


def _fairness(evaluation: Mapping[str, Any] | None) -> Section:
    if evaluation is None:
        return Section("Fairness", [Text(NOT_EVALUATED, quiet=True)])
    groups = (evaluation.get("metrics") or {}).get("groups") or {}
    if not groups:
        return Section("Fairness", [Text("No sensitive features in the objectives.", quiet=True)])
    blocks: list[Any] = []
    for feature, found in groups.items():
        rows = [
            [str(group), *(_number(column, (row or {}).get(column)) for column in GROUP_COLUMNS)]
            for group, row in (found.get("rows") or {}).items()
        ]
        head = (f"{feature} group", "#rows", "#selection rate", "#TPR", "#FPR")
        blocks.append(Table(head, rows))
        difference, ratio = found.get("difference") or {}, found.get("ratio") or {}
        gaps = [
            [metric, _number("", difference.get(metric)), _number("", ratio.get(metric))]
            for metric in dict.fromkeys([*difference, *ratio])
        ]
        caption = f"Gaps between the groups of {feature}: largest difference, smallest ratio."
        blocks.append(Table(("Metric", "#Difference", "#Ratio"), gaps, caption=caption))
    return Section("Fairness", blocks)


def _gate(gate: Mapping[str, Any] | None) -> Section:
    if gate is None:
        return Section("Gate", [Text("No gate record for this version.", quiet=True)])
    record = gate.get("record") or {}
    passed = bool(gate.get("passed"))
    checks = [c for c in record.get("checks") or [] if isinstance(c, Mapping)]
    failed = [c for c in checks if not c.get("passed")]
    verdict = "Gate passed" if passed else f"Gate FAILED: {len(failed)} of {len(checks)} checks"
    items = [
        ("Gate record", str(gate.get("id", NOT_RECORDED))),
        ("Recorded", _when(gate.get("created_at"))),
        ("Baseline", str(record.get("baseline") or "none")),
    ]
    if record.get("note"):
        items.append(("Note", str(record["note"])))
    blocks: list[Any] = [Verdict(passed, verdict), Fields(items)]
    if failed:
        head = ("Check", "Metric", "Where", "#Candidate", "Needs", "Note")
        blocks.append(Table(head, [_check_row(check) for check in failed]))
    return Section("Gate", blocks)


def _check_row(check: Mapping[str, Any]) -> list[str]:
    where = f"across {check['group']}" if check.get("group") else check.get("slice") or "overall"
    return [
        str(check.get("kind", "")),
        str(check.get("metric", "")),
        str(where),
        _number("", check.get("candidate")),
        str(check.get("limit", "")),
        str(check.get("note") or ""),
    ]


def _lineage(card: ModelCard) -> Section:
    run, step, artifact = card.run, card.step_run, card.artifact
    items = [("Training run", NOT_RECORDED if run is None else str(run["id"]))]
    if run is not None and run.get("missing"):
        items.append(("Run record", "not in this project's metadata store"))
    elif run is not None:
        items.append(("Pipeline", str(run.get("pipeline"))))
    items += [("Git commit", _commit(card)), ("Git tree", _dirty(run))]
    step_text = NOT_RECORDED if step is None else f"{step.get('name') or '?'} ({step['id']})"
    items += [
        ("Step run", step_text),
        ("Artifact", str(artifact.get("id"))),
        ("Artifact digest", str(artifact.get("digest") or NOT_RECORDED)),
    ]
    return Section("Lineage", [Fields(items)])


def _commit(card: ModelCard) -> str:
    commit = (card.run or {}).get("git_commit")
    if commit:
        return str(commit)
    recorded = card.lineage.get("git_commit")
    return f"{recorded} (from the lineage)" if recorded else NOT_RECORDED


def _dirty(run: Mapping[str, Any] | None) -> str:
    dirty = (run or {}).get("git_dirty")
    if dirty is None:
        return NOT_RECORDED
    return "uncommitted changes (dirty)" if dirty else "clean"


def _reproduce(run: Mapping[str, Any] | None) -> Section:
    if run is None or run.get("missing"):
        why = "no training run is recorded" if run is None else "its run is not in this project"
        return Section("How to reproduce", [Text(f"Cannot be rerun from here: {why}.")])
    params = json.dumps(run.get("params") or {}, indent=2, sort_keys=True, default=str)
    return Section(
        "How to reproduce",
        [
            Text("From the project folder, rerun the training run with its parameters and seed:"),
            Code(f"shipyard runs reproduce {run['id']}"),
            Text(f"Parameters (seed {run.get('seed')}):"),
            Code(params),
        ],
    )


# -- values for people ----------------------------------------------------------------


def _number(name: str, value: Any) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a" if value is None else str(value)
    if not math.isfinite(value):
        return "n/a"
    if name in COUNTS:
        return f"{value:,.0f}"
    if name in RATES:
        return f"{value * 100:.1f}%"
    return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"


def _count(value: Any) -> str:
    return _number("count", value)


def _when(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return NOT_RECORDED
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _plain(value: Any) -> str:
    """A recorded value as one line of text; "" when there is none."""
    if value is None or value == "" or value == [] or value == {}:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        return ", ".join(map(str, value))
    if isinstance(value, Mapping):
        return ", ".join(f"{key}: {item}" for key, item in value.items())
    return str(value)
