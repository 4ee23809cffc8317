"""``shipyard features list|show|materialize|get|skew``."""

from __future__ import annotations

import datetime as dt
import re
from contextlib import nullcontext
from functools import partial
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from shipyard.cli._console import console, current_project, print_json

app = typer.Typer(
    help="The feature store: views, materialization, online values, training/serving skew.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
ViewArg = Annotated[str, typer.Argument(help="A feature view name.")]
TIME_HELP = "An ISO date-time such as 2026-02-01T00:00:00 (no time zone means UTC)."


def _store() -> Any:
    from shipyard.features.store import FeatureStore

    return FeatureStore.from_project(current_project())


@app.command("list")
def list_views(as_json: JsonOption = False) -> None:
    """Every feature view, its offline history and online state, and what it needs.

    The status column says "ok", or what is out of date: "build" (the history was computed
    by another version of the definition), "materialize" (the online store lags behind)."""
    views = _store().describe()
    if as_json:
        print_json(views)
        return
    if not views:
        console.print("No feature views. Define them in the modules [features] definitions names.")
        return
    table = Table("view", "entities (keys)", "features", "ttl", "version", "offline", "online")
    table.add_column("status")
    table.caption = "Times are UTC."
    for view in views:
        keys = ", ".join(view["keys"])
        table.add_row(
            escape(view["name"]),
            escape(f"{', '.join(view['entities'])} ({keys})"),
            str(len(view["features"])),
            _span(view["ttl_seconds"]),
            view["version"],
            _offline(view["offline"]),
            _online(view["online"]),
            _needs(view["needs"]),
        )
    console.print(table)


@app.command("show")
def show(view: ViewArg, as_json: JsonOption = False) -> None:
    """A view's definition, its offline history and online state, and what it needs."""
    info = _store().describe([view])[0]
    if as_json:
        print_json(info)
        return
    console.print(
        f"[bold]{escape(info['name'])}[/]  version {info['version']}  {_needs(info['needs'])}"
    )
    if info["description"]:
        console.print(escape(info["description"]))
    keys = ", ".join(f"{k} (source column {c})" if k != c else k for k, c in info["keys"].items())
    rows = {
        "owner": info["owner"] or "-",
        "entities": ", ".join(info["entities"]),
        "keys": keys,
        "timestamp": info["timestamp"],
        "created timestamp": info["created_timestamp"] or "-",
        "ttl": _span(info["ttl_seconds"]),
        "sources": ", ".join(f"{n} = {s}" for n, s in info["sources"].items()),
    }
    for label, text in rows.items():
        console.print(f"{label:<18} {escape(text)}")
    features = Table("feature", "dtype")
    for name, dtype in info["features"].items():
        features.add_row(escape(name), dtype)
    console.print(features)
    console.print(f"{'offline':<18} {_offline(info['offline'])}")
    console.print(f"{'online':<18} {_online(info['online'])}")
    if info["needs"]:
        console.print(f"Run `shipyard features materialize {info['name']}` (it builds first).")


@app.command("materialize")
def materialize(
    views: Annotated[list[str] | None, typer.Argument(help="Views (default: all).")] = None,
    start: Annotated[str | None, typer.Option(help=f"Backfill from here. {TIME_HELP}")] = None,
    end: Annotated[str | None, typer.Option(help=f"Up to here (default: now). {TIME_HELP}")] = None,
    as_json: JsonOption = False,
) -> None:
    """Write the latest values per entity into the online store, incrementally.

    Each view resumes from its watermark; a view whose definition changed is rewritten
    from scratch. Exit 2 for an unknown view or a bad --start/--end."""
    lower, upper = _moment(start, "--start"), _moment(end, "--end")
    if lower is not None and upper is not None and lower > upper:
        raise typer.BadParameter(f"--start {start} is after --end {end}.", param_hint="--start")
    store = _store()
    names = views or list(store.views)
    for name in names:
        store.view(name)  # every name is checked before anything is written
    results: list[dict[str, Any]] = []
    with _bars(disable=as_json or not console.is_terminal) as bars:
        for name in names:  # a bar per view; its total is known after the first partition
            tick = partial(_tick, bars, bars.add_task(escape(name), total=None))
            results += store.materialize([name], start=lower, end=upper, progress=tick)
    if as_json:
        print_json(results)
    elif not results:
        console.print("No feature views to materialize.")
    else:
        console.print(_summary(results))


@app.command("get")
def get(
    features: Annotated[
        list[str],
        typer.Argument(help="'view:feature', or a view or request group name (all its features)."),
    ],
    key: Annotated[
        list[str],
        typer.Option(
            "--key",
            "-k",
            help="One entity: join_key=value, several keys comma-separated "
            "(customer_id=c_1,merchant_id=m_2). Repeat for more entities. Values are "
            "converted to the entity's declared key dtype.",
        ),
    ],
    field: Annotated[
        list[str] | None,
        typer.Option(help="A request field as name=value, the same for every entity."),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(help=f"Read as of this time: ttl and ages count from it. {TIME_HELP}"),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Online values of features for the given entities, with their status and age.

    Example: shipyard features get customer_stats merchant_risk:cb_rate
    --key customer_id=c_1,merchant_id=m_2 --key customer_id=c_2,merchant_id=m_2"""
    store = _store()
    entities = _entities(store, key)
    entities.update(_fields(store, field or [], len(key)))
    found = store.online_features(entities, features, now=_moment(now, "--now"))
    ages = found.freshness()
    if as_json:
        times = {view: found.event_times(view) for view in found.status}
        seconds = {f: [_seconds(a) for a in ages[f]] for f in ages}
        result = {"values": found.to_dict(), "status": found.status, "event_times": times}
        print_json({**result, "age_seconds": seconds})
    else:
        console.print(_values_table(found, ages, len(key)))


@app.command("skew")
def skew(
    view: ViewArg,
    sample: Annotated[int, typer.Option(min=1, help="How many entities to check.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Compare a sample of online values with the offline history (training/serving skew).

    Exit 1 when any value differs (for CI), 0 when all agree."""
    with console.status(f"comparing {view}") if not as_json else nullcontext():
        report = _store().skew(view, sample=sample, seed=seed)
    if as_json:
        print_json(report)
    else:
        _print_skew(report)
    if report["mismatches"]:
        raise typer.Exit(1)


# -- input -----------------------------------------------------------------------------

_PAIRS = re.compile(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*=)")  # a comma before the next name=
_STATUS = {"found": "green", "unknown": "red", "expired": "yellow", "computed": "cyan"}


def _moment(text: str | None, option: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"expected an ISO date-time such as 2026-02-01T00:00:00 (UTC) or "
            f"2026-02-01T00:00:00+01:00, got {text!r}",
            param_hint=option,
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _pairs(text: str, option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for part in _PAIRS.split(text):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or name.strip() in pairs:
            raise typer.BadParameter(
                f"expected name=value[,name=value...] with each name once, got {text!r}",
                param_hint=option,
            )
        pairs[name.strip()] = value
    return pairs


def _entities(store: Any, keys: list[str]) -> dict[str, list[Any]]:
    dtypes = {k: d for e in store.entities.values() for k, d in e.dtypes.items()}
    records = [_pairs(text, "--key") for text in keys]
    for record in records:
        unknown = [name for name in record if name not in dtypes]
        if unknown:
            raise typer.BadParameter(
                f"no entity has the join key {unknown[0]!r}; join keys: "
                f"{', '.join(dtypes) or 'none'}",
                param_hint="--key",
            )
        if record.keys() != records[0].keys():
            raise typer.BadParameter(
                f"every --key must name the same join keys; {keys[0]!r} and {keys[1]!r} differ",
                param_hint="--key",
            )
    return {
        name: [_typed(r[name], dtypes[name], name, "--key") for r in records] for name in records[0]
    }


def _fields(store: Any, given: list[str], count: int) -> dict[str, list[Any]]:
    schema = {n: d for g in store.request_features.values() for n, d in g.request_schema.items()}
    fields: dict[str, list[Any]] = {}
    for text in given:
        for name, value in _pairs(text, "--field").items():
            if name in fields:
                raise typer.BadParameter(f"{name!r} is given twice", param_hint="--field")
            fields[name] = [_typed(value, schema.get(name), name, "--field")] * count
    return fields


def _typed(text: str, dtype: Any, name: str, option: str) -> Any:
    """Numbers for numeric dtypes (``int("017")`` encodes as the stored ``"17"``), times
    for datetime fields (ISO 8601; naive means UTC)."""
    if dtype is not None and dtype.is_temporal():
        moment = _moment(text, option)
        assert moment is not None
        return moment.date() if dtype.__class__.__name__ == "Date" else moment
    if dtype is None or not dtype.is_numeric():
        return text
    try:
        return int(text) if dtype.is_integer() else float(text)
    except ValueError:
        raise typer.BadParameter(
            f"{name} is {dtype}; {text!r} is not a number", param_hint=option
        ) from None


# -- output ----------------------------------------------------------------------------


def _time(iso: str | None) -> str:
    return "-" if iso is None else iso.replace("T", " ").removesuffix("+00:00")


def _seconds(age: dt.timedelta | None) -> float | None:
    return None if age is None else age.total_seconds()


def _span(seconds: float | None) -> str:
    """``none``, ``45 s``, ``3 h 20 min``, ``12 d 4 h``: the two largest units."""
    if seconds is None:
        return "none"
    left, parts = int(seconds), list[str]()
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size} {unit}")
            left %= size
    return " ".join(parts[:2])


def _needs(needs: list[str]) -> str:
    return "[bold yellow]" + ", ".join(needs) + "[/]" if needs else "[green]ok[/]"


def _offline(offline: dict[str, Any] | None) -> str:
    if offline is None:
        return "[dim]not built[/]"
    return f"{offline['rows']} rows, {_time(offline['from'])} → {_time(offline['to'])}"


def _online(online: dict[str, Any] | None) -> str:
    if online is None:
        return "[dim]not materialized[/]"
    return f"{online['entities']} entities, up to {_time(online['watermark'])}"


def _values_table(found: Any, ages: dict[str, list[Any]], count: int) -> Table:
    table = Table("key", "feature", "value", "status", "age")
    for index, record in enumerate(found.to_records()):
        shown = escape(", ".join(f"{k}={record[k]}" for k in found.entities))
        for feature, group in found.views.items():
            state = found.status.get(group, ["computed"] * count)[index]  # request features
            value = "[dim]null[/]" if record[feature] is None else escape(str(record[feature]))
            age = _span(_seconds(ages[feature][index]))
            colour = _STATUS.get(state, "white")
            table.add_row(shown, escape(f"{group}:{feature}"), value, f"[{colour}]{state}[/]", age)
    return table


def _print_skew(report: dict[str, Any]) -> None:
    console.print(
        f"[bold]{escape(report['view'])}[/] version {report['version']}: sampled "
        f"{report['sampled']} of {report['entities_offline']} entities "
        f"({report['entities_online']} online), watermark {_time(report['watermark'])} UTC"
    )
    mismatches = report["mismatches"]
    if not mismatches:
        console.print("[green]Online values match the offline history.[/]")
        return
    table = Table("key", "feature", "offline", "online")
    for m in mismatches:
        cells = (m["key"], m["feature"] or "(whole entity)", m["offline"], m["online"])
        table.add_row(*(escape(str(c)) for c in cells))
    console.print(table)
    console.print(f"[bold red]{len(mismatches)} mismatch(es)[/] between offline and online.")


def _summary(results: list[dict[str, Any]]) -> Table:
    table = Table("view", "rebuilt", "partitions", "rows read", "rows written", "entities")
    for column in ("watermark (UTC)", "seconds", "rows/s"):
        table.add_column(column)
    for r in results:
        rate = r["rows_read"] / r["seconds"] if r["seconds"] > 0 else 0.0
        table.add_row(
            escape(r["view"]),
            "yes" if r["rebuilt"] else "no",
            *(f"{r[k]:,}" for k in ("partitions", "rows_read", "rows_written", "entities")),
            _time(r["watermark"]),
            f"{r['seconds']:.2f}",
            f"{rate:,.0f}",
        )
    return table


def _bars(*, disable: bool) -> Any:
    from rich import progress as bars

    columns = (bars.BarColumn(), bars.MofNCompleteColumn(), bars.TimeElapsedColumn())
    text = bars.TextColumn("[bold]{task.description}")
    return bars.Progress(text, *columns, console=console, transient=True, disable=disable)


def _tick(bars: Any, task: Any, _view: str, done: int, total: int) -> None:
    bars.update(task, completed=done, total=total)
