"""Materializers: how a step output of each type is written to bytes and read back.

A materializer is chosen from the step's return annotation, or from the value's
type when the annotation says nothing more specific. Types are matched by their
qualified name, so checking a value never imports Polars, pandas or
scikit-learn. Nothing here unpickles anything: pickle is a materializer that a
user has to name (``@step(materializer="pickle")``) to get.

To store a type of your own::

    class ImageMaterializer(Materializer):
        name = "myteam.png"
        version = "1"
        types = ("PIL.Image.Image",)
        def save(self, value, path): value.save(path, format="PNG"); return {}
        def load(self, path, type_name): return PIL.Image.open(path)

    shipyard.register_materializer(ImageMaterializer())
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Final

from shipyard.errors import MaterializerError, missing_extra

Preview = dict[str, Any]
_PREVIEW_ROWS = 5


class Materializer(ABC):
    """Writes values of some types to one file and reads them back.

    Subclasses set ``name`` (unique, recorded with each artifact), ``version``
    (part of the cache key: bump it when the stored format changes) and
    ``types`` (qualified class names, matched against a value type's MRO).
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    types: ClassVar[tuple[str, ...]] = ()
    #: Chosen only when a step names it, never from a type (e.g. pickle).
    explicit_only: ClassVar[bool] = False

    @abstractmethod
    def save(self, value: Any, path: Path) -> Preview:
        """Write ``value`` to ``path``; return a small JSON-able preview."""

    @abstractmethod
    def load(self, path: Path, type_name: str) -> Any:
        """Read back a value written by ``save``."""

    def save_stream(self, value: Any, stream: BinaryIO) -> Preview | None:
        """Write ``value`` to an open binary stream, if this materializer can.

        The store then hashes the bytes on their way to disk instead of reading the
        file back. Returns None when it cannot, and ``save`` is used instead.
        """
        return None


def qualified_name(cls: type) -> str:
    """``module.QualName`` of a class, the key materializers match on."""
    return f"{cls.__module__}.{cls.__qualname__}"


# -- tables ------------------------------------------------------------------------


#: Table artifacts are Parquet with LZ4: about twice as fast to write and read as
#: zstd (Polars' default) for some 15% more bytes, the right trade for data that
#: pipelines write and read back all day. Any Parquet reader opens them.
TABLE_COMPRESSION: Final = "lz4"


class PolarsMaterializer(Materializer):
    name = "polars.parquet"
    types = (
        "polars.dataframe.frame.DataFrame",
        "polars.lazyframe.frame.LazyFrame",
        "polars.DataFrame",
        "polars.LazyFrame",
    )

    def save(self, value: Any, path: Path) -> Preview:
        import polars as pl

        if isinstance(value, pl.LazyFrame):
            # Streamed to disk: a lazy result larger than memory never has to be collected.
            value.sink_parquet(path, compression=TABLE_COMPRESSION)
            stored = pl.scan_parquet(path)
            rows = stored.select(pl.len()).collect().item()
            head = stored.head(_PREVIEW_ROWS).collect()
            return _table_preview(head.schema, rows, head.rows())
        return self._write_frame(value, path)

    def save_stream(self, value: Any, stream: BinaryIO) -> Preview | None:
        import polars as pl

        return None if isinstance(value, pl.LazyFrame) else self._write_frame(value, stream)

    @staticmethod
    def _write_frame(frame: Any, target: Path | BinaryIO) -> Preview:
        frame.write_parquet(target, compression=TABLE_COMPRESSION, statistics=True)
        return _table_preview(frame.schema, frame.height, frame.head(_PREVIEW_ROWS).rows())

    def load(self, path: Path, type_name: str) -> Any:
        import polars as pl

        if type_name.endswith("LazyFrame"):
            return pl.scan_parquet(path)
        return pl.read_parquet(path)


class PandasMaterializer(Materializer):
    name = "pandas.parquet"
    types = ("pandas.core.frame.DataFrame", "pandas.DataFrame")  # pandas 3 renamed the module

    def save(self, value: Any, path: Path) -> Preview:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(value, preserve_index=True)
        pq.write_table(table, path, compression=TABLE_COMPRESSION)
        head = value.head(_PREVIEW_ROWS).itertuples(index=False, name=None)
        return _table_preview(dict(value.dtypes.items()), len(value), list(head))

    def load(self, path: Path, type_name: str) -> Any:
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pandas()


class ArrowMaterializer(Materializer):
    name = "arrow.parquet"
    types = ("pyarrow.lib.Table",)

    def save(self, value: Any, path: Path) -> Preview:
        import pyarrow.parquet as pq

        pq.write_table(value, path, compression=TABLE_COMPRESSION)
        head = value.slice(0, _PREVIEW_ROWS).to_pylist()
        schema = {f.name: f.type for f in value.schema}
        return _table_preview(schema, value.num_rows, [tuple(r.values()) for r in head])

    def load(self, path: Path, type_name: str) -> Any:
        import pyarrow.parquet as pq

        return pq.read_table(path)


def _table_preview(schema: Any, rows: int, head: list[tuple[Any, ...]]) -> Preview:
    columns = {str(k): str(v) for k, v in dict(schema).items()}
    return {
        "kind": "table",
        "rows": rows,
        "columns": columns,
        "head": [[_cell(v) for v in row] for row in head],
    }


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


# -- arrays, JSON, bytes -------------------------------------------------------------


class NumpyMaterializer(Materializer):
    name = "numpy.npy"
    types = ("numpy.ndarray",)

    def save(self, value: Any, path: Path) -> Preview:
        import numpy as np

        with open(path, "wb") as handle:
            np.save(handle, value, allow_pickle=False)
        return {"kind": "array", "shape": list(value.shape), "dtype": str(value.dtype)}

    def load(self, path: Path, type_name: str) -> Any:
        import numpy as np

        return np.load(path, allow_pickle=False)


class JsonMaterializer(Materializer):
    name = "json"
    types = (
        "builtins.NoneType",
        "builtins.bool",
        "builtins.int",
        "builtins.float",
        "builtins.str",
        "builtins.list",
        "builtins.dict",
        "builtins.tuple",
    )

    def save(self, value: Any, path: Path) -> Preview:
        try:
            text = json.dumps(value, sort_keys=True, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise MaterializerError(
                f"The value is a {type(value).__name__} but is not JSON-able: {exc}. "
                "Return plain numbers, strings, lists and dicts, or annotate the step's "
                "return type with a type that has a materializer."
            ) from exc
        path.write_text(text, encoding="utf-8")
        shown = text if len(text) <= 200 else text[:200] + "…"
        return {"kind": "json", "value": shown}

    def load(self, path: Path, type_name: str) -> Any:
        value = json.loads(path.read_text(encoding="utf-8"))
        return tuple(value) if type_name == "builtins.tuple" else value


class BytesMaterializer(Materializer):
    name = "bytes"
    types = ("builtins.bytes", "builtins.bytearray")

    def save(self, value: Any, path: Path) -> Preview:
        path.write_bytes(bytes(value))
        return {"kind": "bytes", "size": len(value)}

    def load(self, path: Path, type_name: str) -> Any:
        return path.read_bytes()


# -- models ---------------------------------------------------------------------------

#: Modules whose types a stored model may contain. Kept by shipyard, never read
#: from the artifact, so a crafted file cannot widen what it is trusted to load.
TRUSTED_MODULE_PREFIXES: list[str] = [
    "sklearn.",
    "numpy.",
    "scipy.",
    "lightgbm.",
    "builtins.",
    "collections.",
    "_operator.",
    "operator.",
    "math.",
    "functools.partial",
]


def trust_types(*prefixes: str) -> None:
    """Allow stored models to contain types from these modules (e.g. ``"myteam.models."``)."""
    for prefix in prefixes:
        if prefix not in TRUSTED_MODULE_PREFIXES:
            TRUSTED_MODULE_PREFIXES.append(prefix)


class SkopsMaterializer(Materializer):
    name = "skops"
    types = ("sklearn.base.BaseEstimator", "lightgbm.basic.Booster")

    def save(self, value: Any, path: Path) -> Preview:
        sio = _skops()
        sio.dump(value, path)
        self._trusted(sio, path)  # refuse now what could not be loaded later
        params = {}
        if hasattr(value, "get_params"):
            params = {k: _cell(v) for k, v in value.get_params(deep=False).items()}
        return {"kind": "model", "class": qualified_name(type(value)), "params": params}

    def load(self, path: Path, type_name: str) -> Any:
        sio = _skops()
        return sio.load(path, trusted=self._trusted(sio, path))

    @staticmethod
    def _trusted(sio: Any, path: Path) -> list[str]:
        found = sio.get_untrusted_types(file=path)
        refused = [t for t in found if not t.startswith(tuple(TRUSTED_MODULE_PREFIXES))]
        if refused:
            raise MaterializerError(
                f"The model at {path} contains types shipyard does not trust: "
                f"{', '.join(sorted(refused))}. If they are your own, allow their modules "
                "with shipyard.trust_types('yourpackage.'), then load again."
            )
        return list(found)


def _skops() -> Any:
    try:
        import skops.io as sio
    except ImportError:
        raise missing_extra("skops", "ml", "Storing a scikit-learn model") from None
    return sio


class PickleMaterializer(Materializer):
    """Python pickle. Loading it runs code from the file: only chosen by name."""

    name = "pickle"
    explicit_only = True

    def save(self, value: Any, path: Path) -> Preview:
        import pickle

        with open(path, "wb") as handle:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
        return {"kind": "pickle", "class": qualified_name(type(value))}

    def load(self, path: Path, type_name: str) -> Any:
        import pickle

        with open(path, "rb") as handle:
            return pickle.load(handle)  # noqa: S301 - the user named "pickle" for this output


# -- registry -------------------------------------------------------------------------

_BY_NAME: dict[str, Materializer] = {}
_BY_TYPE: dict[str, Materializer] = {}


def register_materializer(materializer: Materializer) -> None:
    """Make ``materializer`` available by its name and for its types (later wins)."""
    _BY_NAME[materializer.name] = materializer
    if not materializer.explicit_only:
        for type_name in materializer.types:
            _BY_TYPE[type_name] = materializer


for _builtin in (
    PolarsMaterializer(),
    PandasMaterializer(),
    ArrowMaterializer(),
    NumpyMaterializer(),
    JsonMaterializer(),
    BytesMaterializer(),
    SkopsMaterializer(),
    PickleMaterializer(),
):
    register_materializer(_builtin)


def by_name(name: str) -> Materializer:
    """The materializer registered under ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise MaterializerError(
            f"No materializer is named {name!r}. Known: {', '.join(sorted(_BY_NAME))}. "
            "Register yours with shipyard.register_materializer()."
        ) from None


def for_type(cls: type) -> Materializer | None:
    """The materializer for ``cls``, matching its MRO by qualified name."""
    for klass in getattr(cls, "__mro__", (cls,)):
        found = _BY_TYPE.get(qualified_name(klass))
        if found is not None:
            return found
    return None


def choose(value: Any, annotation: Any, explicit: str | None) -> Materializer:
    """The materializer for one step output."""
    if explicit is not None:
        return by_name(explicit)
    if isinstance(annotation, type) and annotation is not object:
        found = for_type(annotation)
        if found is not None and isinstance(value, annotation):
            return found
    found = for_type(type(value))
    if found is None:
        raise MaterializerError(
            f"No materializer can store a value of type {qualified_name(type(value))}. "
            "Return a supported type (Polars/pandas/Arrow table, NumPy array, JSON-able "
            "value, bytes, scikit-learn model), register a materializer for it with "
            "shipyard.register_materializer(), or opt in to pickle with "
            '@step(materializer="pickle").'
        )
    return found
