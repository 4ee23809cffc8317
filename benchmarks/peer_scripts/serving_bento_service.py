"""The minimal BentoML service for benchmarks/serving.py: rows in, positive-class scores out.

Served with ``bentoml serve serving_bento_service:Scorer --host 127.0.0.1 --port P`` from the
folder holding this file; the pickled model's path comes from ``SERVING_BENCH_MODEL``.
Request body: ``{"rows": [[20 floats], ...]}``; answer: a JSON list of scores.
"""

from __future__ import annotations

import os
import pickle

import bentoml
import numpy as np


@bentoml.service(workers=1)
class Scorer:
    """Loads the pickled scikit-learn model once and scores the rows of each request."""

    def __init__(self) -> None:
        with open(os.environ["SERVING_BENCH_MODEL"], "rb") as handle:
            self.model = pickle.load(handle)

    @bentoml.api
    def predict(self, rows: list[list[float]]) -> list[float]:
        """The positive-class probability of each row."""
        return self.model.predict_proba(np.asarray(rows, dtype=np.float64))[:, 1].tolist()
