"""Model preparation and servers for benchmarks/serving.py, one subcommand per job.

Each subcommand runs in the venv named beside it (the harness picks the interpreter):

* ``shipyard-export`` (shipyard's venv, working directory = a fresh shipyard project): a
  one-step pipeline returns the fitted model read from ``--model`` (a pickle written by the
  harness), the artifact is registered as model ``churn`` and exported with ``sample=`` to
  ``--out``.
* ``shipyard-serve`` (shipyard's venv): the stand-in for ``shipyard serve``: loads the export
  folder and serves it with ``create_app`` and uvicorn, with or without the prediction log.
* ``noop`` (shipyard's venv): a bare ASGI app answering every request with a constant JSON.
* ``mlflow-save`` (MLflow's venv): ``mlflow.sklearn.save_model`` of the same model.

The BentoML service is ``serving_bento_service.py``; the load generator ``serving_load.py``.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

JSON_PREFIX = "BENCH_JSON "
MODEL_NAME = "churn"


def load_pickle(path: str):
    """The fitted model the harness pickled (same scikit-learn version in every venv)."""
    with open(path, "rb") as handle:
        return pickle.load(handle)


def shipyard_export(args: argparse.Namespace) -> None:
    """Register the model in the project of the working directory and export it."""
    import polars as pl

    from shipyard import pipeline, step
    from shipyard.core.project import Project
    from shipyard.registry.export import export_model
    from shipyard.registry.registry import Registry

    @step(cache=False)
    def fitted(path: str):
        return load_pickle(path)

    @pipeline
    def training(path: str):
        return fitted(path)

    project = Project.discover(Path.cwd())
    artifact = training(path=args.model).step_runs["fitted"].outputs["output"]
    registry = Registry(project)
    version = registry.register(MODEL_NAME, artifact_id=artifact.id)
    sample = pl.read_parquet(args.sample)
    folder = export_model(registry, version.ref, args.out, sample=sample)
    print(JSON_PREFIX + json.dumps({"export": str(folder), "ref": version.ref}), flush=True)


def shipyard_serve(args: argparse.Namespace) -> None:
    """What ``shipyard serve <export> [--log-dir D | --no-log]`` does, in this process."""
    import polars as pl
    import uvicorn

    from shipyard.registry.export import load_export
    from shipyard.serving.app import ServedModel, create_app
    from shipyard.serving.log import PredictionLog

    folder = Path(args.export)
    meta = json.loads((folder / "model.json").read_text())
    model = load_export(folder)
    sample = pl.read_parquet(folder / "sample.parquet", n_rows=1)
    schema = dict(sample.schema)
    served = ServedModel(
        name=meta.get("name", MODEL_NAME),
        version=str(meta.get("version", "1")),
        schema=schema,
        optional=frozenset(),
        score=lambda frame: model.predict_proba(frame.to_numpy())[:, 1],
        threshold=0.5,
    )
    log = None if args.no_log else PredictionLog(Path(args.log_dir), model=served.name)
    app = create_app(served, log=log)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


def noop(args: argparse.Namespace) -> None:
    """The ceiling: a raw ASGI app that drains the body and answers a constant JSON."""
    import uvicorn

    body = b'{"predictions":[{"score":0.5,"decision":true}]}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


def mlflow_save(args: argparse.Namespace) -> None:
    """Save the model as an MLflow model whose pyfunc returns ``predict_proba``."""
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature

    model = load_pickle(args.model)
    sample = pd.read_parquet(args.sample)
    signature = infer_signature(sample, model.predict_proba(sample.to_numpy()))
    mlflow.sklearn.save_model(
        model,
        args.out,
        signature=signature,
        pip_requirements=[f"scikit-learn=={args.sklearn_version}"],
        pyfunc_predict_fn="predict_proba",
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
    )
    print(JSON_PREFIX + json.dumps({"export": args.out}), flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the subcommand and its options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("shipyard-export")
    export.add_argument("--model", required=True)
    export.add_argument("--sample", required=True)
    export.add_argument("--out", required=True)
    serve = sub.add_parser("shipyard-serve")
    serve.add_argument("export")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--log-dir")
    serve.add_argument("--no-log", action="store_true")
    bare = sub.add_parser("noop")
    bare.add_argument("--host", default="127.0.0.1")
    bare.add_argument("--port", type=int, required=True)
    save = sub.add_parser("mlflow-save")
    save.add_argument("--model", required=True)
    save.add_argument("--sample", required=True)
    save.add_argument("--out", required=True)
    save.add_argument("--sklearn-version", required=True)
    args = parser.parse_args(argv)
    if args.command == "shipyard-serve" and not args.no_log and not args.log_dir:
        parser.error("give --log-dir or --no-log")
    return args


COMMANDS = {
    "shipyard-export": shipyard_export,
    "shipyard-serve": shipyard_serve,
    "noop": noop,
    "mlflow-save": mlflow_save,
}


def main(argv: list[str]) -> int:
    """Run one subcommand."""
    args = parse_args(argv)
    COMMANDS[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
