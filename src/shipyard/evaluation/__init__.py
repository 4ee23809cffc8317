"""Business objectives as code: metrics, cost-optimal thresholds, fairness, gates.

from shipyard.evaluation import Objectives, evaluate, run_gate, write_report
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard._utils.lazy import lazy_attributes

__all__ = ["Evaluation", "GateRecord", "Objectives", "evaluate", "run_gate", "write_report"]

_LAZY = {
    "Evaluation": "shipyard.evaluation.evaluate",
    "GateRecord": "shipyard.evaluation.gate",
    "Objectives": "shipyard.evaluation.objectives",
    "evaluate": "shipyard.evaluation.evaluate",
    "run_gate": "shipyard.evaluation.gate",
    "write_report": "shipyard.evaluation.report",
}

if TYPE_CHECKING:
    from shipyard.evaluation.evaluate import Evaluation, evaluate
    from shipyard.evaluation.gate import GateRecord, run_gate
    from shipyard.evaluation.objectives import Objectives
    from shipyard.evaluation.report import write_report


__getattr__ = lazy_attributes(__name__, _LAZY, globals())
