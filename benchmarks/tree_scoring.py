"""Scoring a few rows with the fraud demo's model: scikit-learn vs the compiled tree scorer.

The model is built as ``examples/fraud/fraud/training.py: train_model`` builds it (an
OrdinalEncoder on the 5 categorical columns in a ColumnTransformer, remainder passthrough,
then HistGradientBoostingClassifier with learning_rate 0.1 and max_iter 200), trained on
generated rows with the demo's 27 input columns and dtypes (some nulls, as a first payment
has). ``early_stopping=False`` keeps all 200 trees, the demo's worst case.

Contenders, each given the same Polars frame of 1, 8 or 64 fresh rows (unknown and null
categories mixed in):

* ``sklearn``: ``model.predict_proba(frame)[:, 1]`` with OpenMP's default threads;
* ``sklearn_1thread``: the same inside ``threadpool_limits(1)``;
* ``compiled``: ``shipyard.serving._trees.compile_scorer(model, inputs)(frame)``.

Each figure is the median of ``--calls`` timed calls (after warm-up), per call and per row;
the compiled scores are checked equal to scikit-learn's first.

Usage::

    .venv/bin/python benchmarks/tree_scoring.py [--calls 400]

Results go to ``benchmarks/results/tree_scoring.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import sklearn
from batch_scoring import AMOUNTS, CATEGORICAL, COUNTS, INPUTS, LEVELS, NUMERIC  # one layout
from threadpoolctl import threadpool_limits

from shipyard.serving._trees import compile_scorer

RESULTS = Path(__file__).resolve().parent / "results" / "tree_scoring.json"
SEED = 20261129
ROWS = (1, 8, 64)
TRAIN_ROWS = 50_000


def generate(rows: int, seed: int, unknown: float = 0.0) -> tuple[pl.DataFrame, np.ndarray]:
    """Rows with the demo model's inputs and dtypes, and a label; ``unknown`` of the
    categories replaced by a new value or a null."""
    rng = np.random.default_rng(seed)
    amount = np.round(rng.lognormal(3.5, 1.0, rows), 2)
    columns: dict[str, Any] = {}
    for name, levels in LEVELS.items():
        values = np.asarray(levels, dtype=object)[rng.integers(0, len(levels), rows)]
        swap = rng.random(rows) < unknown
        values[swap] = rng.choice(np.array(["new", None], dtype=object), int(swap.sum()))
        columns[name] = pl.Series(name, values.tolist(), dtype=pl.String)
    columns["amount"] = amount
    counts = rng.poisson([0.3, 2.0, 8.0], size=(rows, 3))
    first = rng.random(rows) < 0.05  # a customer's first payment: no history yet
    for index, name in enumerate(COUNTS):
        columns[name] = pl.Series(counts[:, index]).set(pl.Series(first), None)
    for name in AMOUNTS:
        columns[name] = np.where(first, np.nan, np.round(amount * rng.uniform(0.2, 6, rows), 2))
    payments = rng.integers(1, 5_000, rows)
    chargebacks = rng.binomial(payments, 0.01)
    columns |= {
        "merchant_payments_30d": payments,
        "merchant_chargebacks_30d": chargebacks,
        "merchant_chargeback_rate_30d": chargebacks / payments,
        "log_amount": np.log1p(amount),
        "hour": rng.integers(0, 24, rows),
        "is_weekend": (rng.random(rows) < 2 / 7).astype(np.int8),
        "account_age_days": rng.integers(0, 2_000, rows),
        "country_is_usual": (rng.random(rows) < 0.9).astype(np.int8),
        "amount_vs_usual": rng.lognormal(0.0, 0.5, rows),
    }
    frame = pl.DataFrame(columns).with_columns(
        pl.col(name).cast(dtype) for name, dtype in NUMERIC.items()
    )
    risk = (
        0.8 * (frame["country_is_usual"] == 0).to_numpy()
        + 0.6 * np.isin(frame["merchant_category"].to_numpy(), ["gift_cards", "digital_goods"])
        + 0.4 * (frame["device"] == "web").fill_null(value=False).to_numpy()
        + 0.3 * np.log1p(frame["customer_count_1h"].fill_null(0).to_numpy())
        + 20 * frame["merchant_chargeback_rate_30d"].to_numpy()
    )
    label = (rng.random(rows) < 1 / (1 + np.exp(-(risk - 3.5)))).astype(np.int8)
    return frame.select(INPUTS), label


def train_model(frame: pl.DataFrame, label: np.ndarray) -> Any:
    """``examples/fraud/fraud/training.py: train_model``, all 200 trees kept."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    encode = ColumnTransformer(
        [
            (
                "categories",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2
                ),
                CATEGORICAL,
            )
        ],
        remainder="passthrough",
    )
    classifier = HistGradientBoostingClassifier(
        learning_rate=0.1,
        max_iter=200,
        early_stopping=False,
        categorical_features=list(range(len(CATEGORICAL))),
        random_state=SEED,
    )
    return make_pipeline(encode, classifier).fit(frame, label)


def median_ms(call: Callable[[], Any], calls: int) -> float:
    for _ in range(max(calls // 20, 3)):
        call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()

    frame, label = generate(TRAIN_ROWS, SEED)
    with threadpool_limits(1):
        model = train_model(frame, label)
        started = time.perf_counter()
        scorer = compile_scorer(model, INPUTS)
        compile_s = time.perf_counter() - started
    assert scorer is not None, "the compiled scorer refused the fraud model"
    classifier = model[-1]
    depth = max(int(p[0].nodes["depth"].max()) for p in classifier._predictors)
    print(
        f"model: {len(classifier._predictors)} trees, max depth {depth}, "
        f"compiled (and verified) in {compile_s:.2f} s"
    )

    def sklearn_1thread(rows: pl.DataFrame) -> Any:
        with threadpool_limits(1):
            return model.predict_proba(rows)[:, 1]

    contenders: dict[str, Callable[[pl.DataFrame], Any]] = {
        "sklearn": lambda rows: model.predict_proba(rows)[:, 1],
        "sklearn_1thread": sklearn_1thread,
        "compiled": scorer,
    }
    fresh, _ = generate(max(ROWS), SEED + 1, unknown=0.1)
    results: dict[str, dict[str, float]] = {}
    print(f"{'rows':>4}  {'contender':<16}{'ms/call':>9}{'µs/row':>9}")
    for rows in ROWS:
        batch = fresh.head(rows)
        expected = model.predict_proba(batch)[:, 1]
        assert np.abs(scorer(batch) - expected).max() <= 1e-12
        for name, score in contenders.items():
            calls = args.calls if name == "compiled" else max(args.calls // 4, 20)
            ms = median_ms(lambda s=score, b=batch: s(b), calls)
            results.setdefault(name, {})[str(rows)] = ms
            print(f"{rows:>4}  {name:<16}{ms:>9.3f}{ms * 1e3 / rows:>9.1f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "tree_scoring",
                "command": "python benchmarks/tree_scoring.py",
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "load_average_1m": os.getloadavg()[0],
                },
                "sklearn": sklearn.__version__,
                "model": {"trees": len(classifier._predictors), "max_depth": depth},
                "compile_seconds": compile_s,
                "median_ms_per_call": results,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
