"""The code closure of a step: what its cache key must change with.

A step's closure is its own code plus the project-local functions, classes,
modules and constants that it reaches through global names, followed
transitively. Code is hashed as its syntax tree with docstrings removed, so
editing a comment, a docstring or the formatting does not invalidate a cache,
while editing a helper the step calls does. Third-party and standard-library
objects are not hashed by source; the versions of the third-party
distributions reached are recorded instead.
"""

from __future__ import annotations

import ast
import dis
import hashlib
import importlib
import importlib.metadata as md
import importlib.util
import inspect
import os
import sys
import sysconfig
import textwrap
import threading
import types
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

_CONSTANT_TYPES = (int, float, str, bytes, bool, type(None))


@dataclass
class Closure:
    """The hash of a callable's code closure and the third-party packages it reaches."""

    digest: str
    packages: dict[str, str] = field(default_factory=dict)


_walking = threading.RLock()
Stamp = tuple[str, int, int]  # a source file's path, mtime and size
_MISSING = object()
Binding = tuple[dict[str, Any], str, int]  # a namespace, a name in it, the id of its value
_memo: weakref.WeakKeyDictionary[
    Any, tuple[Any, tuple[Stamp, ...], Closure, tuple[Binding, ...]]
] = weakref.WeakKeyDictionary()


def closure_of(fn: Any) -> Closure:
    """Hash the code closure of ``fn``.

    The result is remembered while the function's code, every source file the
    closure reached and every global name it read stay unchanged, so a helper edited
    in a long-lived process (a notebook with autoreload), or a global rebound there
    (``VIEW = FeatureView(...)`` run again), is still noticed.

    One walk at a time: ``inspect.getsource`` goes through ``linecache``, which is not
    thread-safe (one thread's ``checkcache`` can drop the entry another is reading, a
    KeyError), and a run walks closures from its driver and its environment thread.
    """
    with _walking:
        code = getattr(fn, "__code__", None)
        found = _memo.get(fn)
        if (
            found is not None
            and found[0] is code
            and all(map(_unchanged, found[1]))
            and all(id(space.get(name, _MISSING)) == ident for space, name, ident in found[3])
        ):
            return found[2]
        walker = _Walker()
        walker.visit(fn)
        closure = Closure(walker.digest(), dict(sorted(walker.packages.items())))
        stamps = tuple(_stamp(f) for f in sorted(walker.files))
        _memo[fn] = (code, stamps, closure, tuple(walker.bindings))
        return closure


def _stamp(path: str) -> Stamp:
    try:
        stat = os.stat(path)
    except OSError:
        return (path, -1, -1)
    return (path, stat.st_mtime_ns, stat.st_size)


def _unchanged(stamp: Stamp) -> bool:
    return _stamp(stamp[0]) == stamp


class _Walker:
    def __init__(self) -> None:
        self.parts: list[tuple[str, str]] = []
        self.packages: dict[str, str] = {}
        self.files: set[str] = set()
        self.bindings: list[Binding] = []
        self._seen: set[int] = set()

    def digest(self) -> str:
        hasher = hashlib.sha256()
        for name, text in sorted(self.parts):
            hasher.update(f"{name}\0{text}\0".encode())
        return hasher.hexdigest()

    def visit(self, obj: Any) -> None:
        obj = inspect.unwrap(obj) if callable(obj) else obj
        if id(obj) in self._seen:
            return
        self._seen.add(id(obj))
        if isinstance(obj, types.ModuleType):
            self._visit_module(obj)
        elif isinstance(obj, (types.FunctionType, type)):
            self._visit_code_object(obj)
        elif (wrapped := getattr(obj, "__shipyard_fn__", None)) is not None:
            self.visit(wrapped)

    def _visit_code_object(self, obj: Any) -> None:
        module = sys.modules.get(getattr(obj, "__module__", "") or "")
        if module is None or not _is_project_module(module):
            self._note_package(module)
            return
        name = f"{module.__name__}:{getattr(obj, '__qualname__', obj)}"
        self._note_file(module)
        self.parts.append((name, _normalized_source(obj)))
        for global_name in sorted(_global_names(obj)):
            self._visit_global(global_name, _globals_of(obj, module))
        for free_name, value in sorted(_free_variables(obj).items()):
            self._visit_global(free_name, {free_name: value})
        for imported in sorted(_imports_inside(obj)):
            self._visit_import(imported)

    def _visit_global(self, name: str, namespace: dict[str, Any]) -> None:
        if name not in namespace:
            return
        value = namespace[name]
        self.bindings.append((namespace, name, id(value)))
        version = getattr(type(value), "__shipyard_version__", None)
        if isinstance(version, property):  # a definition that hashes itself (a feature view)
            self.parts.append((f"version:{name}", str(value.__shipyard_version__)))
        elif isinstance(value, _CONSTANT_TYPES):
            self.parts.append((f"const:{name}", repr(value)))
        elif isinstance(value, (tuple, frozenset)) and all(
            isinstance(v, _CONSTANT_TYPES) for v in value
        ):
            self.parts.append((f"const:{name}", repr(sorted(map(repr, value)))))
        else:
            self.visit(value)

    def _visit_module(self, module: types.ModuleType) -> None:
        if not _is_project_module(module):
            self._note_package(module)
            return
        # A project module reached by name: its whole source counts, because the
        # step may use any attribute of it.
        self._note_file(module)
        try:
            source = _getsource(module)
        except (OSError, TypeError):
            source = ""
        self.parts.append((f"module:{module.__name__}", _strip_docstrings(source)))
        namespace = vars(module)
        for name in sorted(_module_level_names(source)):
            value = namespace.get(name)
            if isinstance(value, (types.ModuleType, types.FunctionType, type)):
                self.visit(value)
        for name in sorted(_module_definitions(source)):
            self._visit_live(module, namespace, name)

    def _visit_live(self, module: types.ModuleType, namespace: dict[str, Any], name: str) -> None:
        """What a name the module defines holds now: the file says what it was, but a live
        process (a notebook) may have rebound it since."""
        value = namespace.get(name, _MISSING)
        self.bindings.append((namespace, name, id(value)))
        if isinstance(value, _CONSTANT_TYPES):
            self.parts.append((f"live:{module.__name__}.{name}", repr(value)))
        elif isinstance(value, (types.FunctionType, type)) and (
            getattr(value, "__module__", None) != module.__name__
            or getattr(value, "__qualname__", name) != name
        ):
            self.parts.append((f"live:{module.__name__}.{name}", "rebound"))
            self.visit(value)

    def _visit_import(self, name: str) -> None:
        """A module the step imports in its body; it may not be imported yet."""
        found = sys.modules.get(name)
        if found is not None:
            self.visit(found)
            return
        top = name.partition(".")[0]
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        origin = getattr(spec, "origin", None)
        if origin and _is_project_file(origin):
            # Project code the step will import when it runs: hash it now.
            self.visit(importlib.import_module(name))
            return
        dist = _distribution_version(top)
        if dist is not None:
            self.packages[dist[0]] = dist[1]

    def _note_file(self, module: types.ModuleType) -> None:
        filename = getattr(module, "__file__", None)
        if filename:
            self.files.add(filename)

    def _note_package(self, module: types.ModuleType | None) -> None:
        if module is None:
            return
        top = module.__name__.partition(".")[0]
        found = _distribution_version(top)
        if found is not None:
            self.packages[found[0]] = found[1]


def _globals_of(obj: Any, module: types.ModuleType) -> dict[str, Any]:
    fn_globals = getattr(obj, "__globals__", None)
    return fn_globals if isinstance(fn_globals, dict) else vars(module)


def _global_names(obj: Any) -> set[str]:
    """Global names that a function's or class's code may load."""
    names: set[str] = set()
    if isinstance(obj, type):
        names.update(b.__name__ for b in obj.__bases__ if b.__module__ == obj.__module__)
    for code in _code_objects(obj):
        names.update(code.co_names)
    return names


def _code_objects(obj: Any) -> list[types.CodeType]:
    """Every code object of a function, or of a class's methods, nested ones included."""
    if isinstance(obj, types.FunctionType):
        roots = [obj.__code__]
    else:
        roots = []
        for member in vars(obj).values():
            for func in (getattr(member, "__func__", member), getattr(member, "fget", None)):
                if isinstance(func, types.FunctionType):
                    roots.append(func.__code__)
    found = []
    while roots:
        code = roots.pop()
        found.append(code)
        roots.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return found


def _imports_inside(obj: Any) -> set[str]:
    """Modules imported by ``import`` statements inside the function body (absolute only)."""
    names = set()
    for code in _code_objects(obj):
        for instruction in dis.get_instructions(code):
            if instruction.opname == "IMPORT_NAME" and isinstance(instruction.argval, str):
                names.add(instruction.argval)
    return names


def _free_variables(obj: Any) -> dict[str, Any]:
    """Variables a nested function closes over (``nonlocal`` names), with their values."""
    code, cells = getattr(obj, "__code__", None), getattr(obj, "__closure__", None)
    if code is None or not cells:
        return {}
    values = {}
    for name, cell in zip(code.co_freevars, cells, strict=True):
        try:
            values[name] = cell.cell_contents
        except ValueError:  # an empty cell: the variable is not bound yet
            continue
    return values


@cache
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.update(p for p in sys.path if "site-packages" in p or "dist-packages" in p)
    return tuple(str(Path(r).resolve()) for r in roots)


@cache
def _is_project_file(filename: str) -> bool:
    resolved = str(Path(filename).resolve())
    return not resolved.startswith(_library_roots())


def _is_project_module(module: types.ModuleType) -> bool:
    name = module.__name__
    if name == "__main__":
        return True
    if name.partition(".")[0] in ("shipyard",) or name in sys.builtin_module_names:
        return False
    filename = getattr(module, "__file__", None)
    return bool(filename) and _is_project_file(filename)


@cache
def _distribution_version(top_level: str) -> tuple[str, str] | None:
    """The installed distribution (name, version) that provides a top-level module."""
    if top_level in sys.stdlib_module_names or top_level in sys.builtin_module_names:
        return None
    for dist in _distribution_names(top_level):
        try:
            return dist, md.version(dist)
        except md.PackageNotFoundError:
            continue
    return None


def _distribution_names(top_level: str) -> Iterator[str]:
    """The module's own name first (usually right), then the costly full mapping."""
    yield top_level
    yield from _packages_distributions().get(top_level, [])


@cache
def _packages_distributions() -> dict[str, list[str]]:
    return dict(md.packages_distributions())


def _getsource(obj: Any) -> str:
    """``inspect.getsource``, retried when another thread (formatting a traceback, say)
    drops the file from ``linecache`` half-way through: a KeyError, not a real failure."""
    for _ in range(5):
        try:
            return inspect.getsource(obj)
        except KeyError:
            continue
    return inspect.getsource(obj)


def _normalized_source(obj: Any) -> str:
    try:
        source = _getsource(obj)
    except (OSError, TypeError):
        # No source (defined in a REPL): fall back to the bytecode.
        code = getattr(obj, "__code__", None)
        return code.co_code.hex() if code is not None else repr(obj)
    return _strip_docstrings(textwrap.dedent(source))


def _strip_docstrings(source: str) -> str:
    """The syntax tree of ``source`` without docstrings, comments or formatting."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if body and _is_docstring(body[0]):
                node.body = body[1:] or [ast.Pass()]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            node.decorator_list = [d for d in node.decorator_list if not _is_shipyard_decorator(d)]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _is_shipyard_decorator(node: ast.expr) -> bool:
    """``@step(...)`` options are hashed separately; only the body is code."""
    target = node.func if isinstance(node, ast.Call) else node
    return isinstance(target, (ast.Name, ast.Attribute)) and (
        getattr(target, "id", None) in ("step", "pipeline")
        or getattr(target, "attr", None) in ("step", "pipeline")
    )


def _module_definitions(source: str) -> set[str]:
    """The names a module's top level defines: functions, classes and assigned names."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _module_level_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
