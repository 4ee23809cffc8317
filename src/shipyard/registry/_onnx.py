"""ONNX beside the skops model: converted with skl2onnx, checked with ONNX Runtime.

Both are optional (``pip install 'shipyard[onnx]'``) and untyped, so they are imported
here, when used, and handled as ``Any``. The model takes one float64 input named
``input`` with the features in order, and its ``probabilities`` output has one column
per class: the score is the second column.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

INPUT = "input"
REASON_CHARS = 300  # skl2onnx can put a whole tree ensemble in its message


def export(
    model: Any, features: int, path: Path, sample: np.ndarray | None, scores: np.ndarray | None
) -> dict[str, Any]:
    """Convert ``model`` to ``path`` and compare its scores on ``sample`` with ``scores``.

    Returns:
        What ``model.json`` records under ``"onnx"``: ``available`` and, when it is
        False, the ``reason``; otherwise the file, the versions and ``max_abs_difference``
        (None when there is no sample to compare on).
    """
    try:
        content = _convert(model, features)
    except ImportError as exc:
        return _unavailable(f"{exc.name} is not installed: pip install 'shipyard[onnx]'")
    except Exception as exc:  # skl2onnx raises many kinds for what it cannot convert
        return _unavailable(f"skl2onnx cannot convert this model: {_short(exc)}")
    difference = None
    if sample is not None and scores is not None:
        try:
            difference = max_abs_difference(run(content, sample), scores)
        except Exception as exc:  # ONNX Runtime raises its own errors for graphs it rejects
            return _unavailable(f"converted, but ONNX Runtime cannot run it: {_short(exc)}")
    path.write_bytes(content)
    return {
        "available": True,
        "file": path.name,
        "input": INPUT,
        "skl2onnx": md.version("skl2onnx"),
        "onnxruntime": _version("onnxruntime"),
        "max_abs_difference": difference,
        "sample_rows": None if sample is None else len(sample),
    }


def _convert(model: Any, features: int) -> bytes:
    converter = importlib.import_module("skl2onnx")
    types = importlib.import_module("skl2onnx.common.data_types")
    importlib.import_module("onnxruntime")  # converted but never checked is not offered
    proto = converter.to_onnx(
        model,
        initial_types=[(INPUT, types.DoubleTensorType([None, features]))],
        options={"zipmap": False},
    )
    content: bytes = proto.SerializeToString()
    return content


def session(model: bytes | Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function giving the scores (probability of class 1) of a float64 matrix, from one
    ONNX Runtime session opened now and reused on every call.

    Raises:
        ImportError: onnxruntime is not installed.
    """
    runtime = importlib.import_module("onnxruntime")
    content = model.read_bytes() if isinstance(model, Path) else model
    options = runtime.SessionOptions()
    options.intra_op_num_threads = 1  # a server scores small batches; threads only contend
    opened = runtime.InferenceSession(
        content, sess_options=options, providers=["CPUExecutionProvider"]
    )
    outputs = [output.name for output in opened.get_outputs()]
    wanted = ["probabilities" if "probabilities" in outputs else outputs[-1]]

    def scores(matrix: np.ndarray) -> np.ndarray:
        (probabilities,) = opened.run(wanted, {INPUT: np.ascontiguousarray(matrix, np.float64)})
        return np.asarray(probabilities, dtype=np.float64)[:, 1]

    return scores


def run(model: bytes | Path, sample: np.ndarray) -> np.ndarray:
    """The scores (probability of class 1) that the ONNX model gives ``sample``.

    Raises:
        ImportError: onnxruntime is not installed.
    """
    runtime = importlib.import_module("onnxruntime")
    content = model.read_bytes() if isinstance(model, Path) else model
    session = runtime.InferenceSession(content, providers=["CPUExecutionProvider"])
    outputs = [output.name for output in session.get_outputs()]
    wanted = "probabilities" if "probabilities" in outputs else outputs[-1]
    (probabilities,) = session.run([wanted], {INPUT: np.ascontiguousarray(sample, np.float64)})
    return np.asarray(probabilities, dtype=np.float64)[:, 1]


def max_abs_difference(found: np.ndarray, expected: np.ndarray) -> float:
    """The largest gap between two score arrays (inf when their shapes differ)."""
    if found.shape != expected.shape:
        return float("inf")
    return float(np.max(np.abs(found - expected), initial=0.0))


def _unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}


def _short(exc: Exception) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    if len(first) > REASON_CHARS:
        first = first[:REASON_CHARS] + "…"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None
