"""shipyard.toml and SHIPYARD_* settings: finding the project, validating, overriding, resolving."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.config import (
    PROJECT_TEMPLATE,
    ProjectSettings,
    _line_of,
    find_project_root,
    load_settings,
)
from shipyard.errors import ConfigError, ProjectNotFoundError


@pytest.fixture(autouse=True)
def _no_shipyard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SHIPYARD_"):
            monkeypatch.delenv(name)


def write_project(root: Path, name: str = "test-project") -> Path:
    """A minimal project folder; returns the folder."""
    return write_toml(root, f'[project]\nname = "{name}"\nowner = "tests"\n').parent


def write_toml(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "shipyard.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(root: Path, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(root, environ=environ or {})
    return str(info.value)


# -- finding the project ---------------------------------------------------------------


def test_project_is_found_by_walking_up_from_a_subfolder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_project(tmp_path / "proj", name="walker")
    deep = root / "src" / "models" / "v1"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)

    assert find_project_root() == root.resolve()
    assert find_project_root(deep) == root.resolve()
    settings = load_settings()
    assert settings.root == root.resolve()
    assert settings.project.name == "walker"
    assert settings.source == root.resolve() / "shipyard.toml"


def test_the_nearest_project_wins(tmp_path: Path) -> None:
    outer = write_project(tmp_path / "outer", name="outer")
    inner = write_project(outer / "inner", name="inner")
    (inner / "sub").mkdir()

    assert find_project_root(inner / "sub") == inner.resolve()
    assert load_settings(find_project_root(inner / "sub")).project.name == "inner"


def test_project_dir_variable_overrides_the_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = write_project(tmp_path / "here", name="here")
    there = write_project(tmp_path / "there", name="there")
    monkeypatch.chdir(here)
    monkeypatch.setenv("SHIPYARD_PROJECT_DIR", str(there))

    assert find_project_root() == there.resolve()
    assert find_project_root(here) == there.resolve()
    assert load_settings().project.name == "there"


def test_project_dir_variable_without_a_project_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("SHIPYARD_PROJECT_DIR", str(empty))

    with pytest.raises(ProjectNotFoundError) as info:
        find_project_root()
    message = str(info.value)
    assert "SHIPYARD_PROJECT_DIR" in message
    assert str(empty) in message
    assert f"shipyard init {empty}" in message


def test_no_project_raises_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lonely = tmp_path / "no" / "project" / "here"
    lonely.mkdir(parents=True)
    monkeypatch.chdir(lonely)

    with pytest.raises(ProjectNotFoundError) as info:
        load_settings()
    message = str(info.value)
    assert "No shipyard.toml in" in message
    assert str(lonely.resolve()) in message
    assert "shipyard init" in message
    # A missing project is a configuration problem and a missing file, for callers who
    # catch either.
    assert isinstance(info.value, ConfigError)
    assert isinstance(info.value, FileNotFoundError)


def test_load_settings_of_a_folder_without_the_file(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFoundError) as info:
        load_settings(tmp_path, environ={})
    assert "does not exist" in str(info.value)
    assert f"shipyard init {tmp_path}" in str(info.value)


# -- what a valid file gives -------------------------------------------------------------


def test_minimal_file_gets_the_defaults(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", name="mini")
    settings = load_settings(root, environ={})

    assert settings.project == ProjectSettings(name="mini", owner="tests")
    assert settings.metadata_url == f"sqlite:///{root.resolve()}/.shipyard/metadata.db"
    assert settings.artifacts_url == str(root.resolve() / ".shipyard" / "artifacts")
    assert settings.executor == "local"
    assert settings.max_workers == 4
    assert settings.seed is None
    assert settings.state_dir == root.resolve() / ".shipyard"


def test_every_table_is_read(tmp_path: Path) -> None:
    root = tmp_path / "full"
    write_toml(
        root,
        """
[project]
name = "full"
owner = "fraud-team"
contacts = ["fraud@example.com", "#fraud"]
description = "flags card fraud"
pipelines = ["flows.train", "flows.score"]

[stores]
metadata = "postgresql://db.internal/shipyard"
artifacts = "s3://bucket/prefix"

[executor]
kind = "local"
max_workers = 2

[runs]
seed = 42
""",
    )
    settings = load_settings(root, environ={})

    assert settings.project == ProjectSettings(
        name="full",
        owner="fraud-team",
        contacts=("fraud@example.com", "#fraud"),
        description="flags card fraud",
        pipelines=("flows.train", "flows.score"),
    )
    assert settings.metadata_url == "postgresql://db.internal/shipyard"
    assert settings.artifacts_url == "s3://bucket/prefix"
    assert settings.max_workers == 2
    assert settings.seed == 42


def test_the_init_template_is_a_valid_config(tmp_path: Path) -> None:
    root = write_toml(tmp_path / "p", PROJECT_TEMPLATE.format(name="tmpl", owner="me")).parent
    settings = load_settings(root, environ={})
    assert settings.project.name == "tmpl"
    assert settings.project.owner == "me"
    assert settings.project.pipelines == ("pipelines",)
    assert settings.max_workers == 4


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("sqlite:///state/meta.db", "sqlite:///{root}/state/meta.db"),
        ("sqlite:///./a/../b.db", "sqlite:///{root}/b.db"),
        ("sqlite:////var/lib/meta.db", "sqlite:////var/lib/meta.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite://", "sqlite://"),
        ("postgresql://user@host/db", "postgresql://user@host/db"),
    ],
)
def test_metadata_url_relative_sqlite_is_resolved_against_the_project(
    tmp_path: Path, metadata: str, expected: str
) -> None:
    root = tmp_path / "proj"
    write_toml(root, f'[project]\nname = "p"\n[stores]\nmetadata = "{metadata}"\n')
    settings = load_settings(root, environ={})
    assert settings.metadata_url == expected.format(root=root.resolve())


@pytest.mark.parametrize(
    ("artifacts", "expected"),
    [
        ("store/objects", "{root}/store/objects"),
        ("./x/../y", "{root}/y"),
        ("/srv/artifacts", "/srv/artifacts"),
        ("file:///srv/artifacts", "/srv/artifacts"),
        ("s3://bucket/prefix", "s3://bucket/prefix"),
        ("gs://bucket/a/b", "gs://bucket/a/b"),
        ("memory://scratch", "memory://scratch"),
    ],
)
def test_artifacts_url_folder_resolved_url_left_alone(
    tmp_path: Path, artifacts: str, expected: str
) -> None:
    root = tmp_path / "proj"
    write_toml(root, f'[project]\nname = "p"\n[stores]\nartifacts = "{artifacts}"\n')
    settings = load_settings(root, environ={})
    assert settings.artifacts_url == expected.format(root=root.resolve())


def test_paths_resolve_against_the_project_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_project(tmp_path / "proj")
    (root / "deep").mkdir()
    monkeypatch.chdir(root / "deep")
    settings = load_settings()
    assert settings.artifacts_url == str(root.resolve() / ".shipyard" / "artifacts")
    assert settings.metadata_url == f"sqlite:///{root.resolve()}/.shipyard/metadata.db"


# -- what an invalid file says -----------------------------------------------------------


def test_unknown_table_names_file_line_and_known_tables(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path / "p", '[project]\nname = "p"\n\n[storage]\nmetadata = "sqlite://"\n'
    )
    message = config_error(path.parent)
    assert message.startswith(f"{path}:4: unknown table [storage].")
    assert (
        "Expected one of: [project], [stores], [features], [executor], [runs], [objectives]"
        in message
    )


def test_unknown_key_names_file_line_key_and_known_keys(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path / "p",
        '[project]\nname = "p"\n\n[executor]\nkind = "local"\nmax_worker = 3\n',
    )
    message = config_error(path.parent)
    assert message.startswith(f"{path}:6: unknown key 'max_worker' in [executor].")
    assert "Known keys: kind, max_workers." in message
    assert "fix its spelling" in message


def test_unknown_sub_table_is_reported_at_its_header(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "p", '[project]\nname = "p"\n\n[project.extra]\nx = 1\n')
    message = config_error(path.parent)
    assert message.startswith(f"{path}:4: unknown key 'extra' in [project].")


def test_key_outside_any_table_says_so(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "p", '# settings\nname = "p"\n\n[project]\nowner = "x"\n')
    message = config_error(path.parent)
    assert message.startswith(f"{path}:2: 'name' is set outside any table.")
    assert "[project], [stores], [features], [executor], [runs], [objectives]" in message


def test_known_table_written_as_a_value(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "p", '\nproject = "p"\n')
    assert config_error(path.parent) == f"{path}:2: 'project' must be a table ([project])."


@pytest.mark.parametrize(
    ("line", "expected", "got"),
    [
        ('max_workers = "four"', "an integer", "got 'four' (a str)"),
        ("max_workers = 4.0", "an integer", "got 4.0 (a float)"),
        ("max_workers = true", "an integer", "got True (a bool)"),
        ("kind = 1", "a string", "got 1 ("),
    ],
)
def test_wrong_type_names_key_line_expected_and_got(
    tmp_path: Path, line: str, expected: str, got: str
) -> None:
    path = write_toml(tmp_path / "p", f'[project]\nname = "p"\n\n[executor]\n{line}\n')
    key = line.split(" ", 1)[0]
    message = config_error(path.parent)
    assert message.startswith(f"{path}:5: [executor] {key} must be {expected}")
    assert got in message
    assert f"Change the value to {expected}." in message


def test_list_of_strings_is_checked(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "p", '[project]\nname = "p"\ncontacts = ["a", 2]\n')
    message = config_error(path.parent)
    assert message.startswith(f"{path}:3: [project] contacts must be a list of strings")
    assert "got ['a', 2] (a list)" in message


def test_missing_project_name_is_required(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "p", '[project]\nowner = "team"\n')
    message = config_error(path.parent)
    assert message.startswith(f"{path}: [project] name is required")
    assert 'Add a line `name = "..."` under [project].' in message


def test_file_without_project_table_needs_a_name(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "p", "[executor]\nmax_workers = 2\n")
    assert "[project] name is required" in config_error(path.parent)


def test_invalid_toml_names_the_file_and_position(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "p", '[project]\nname = "p"\nowner = \n')
    message = config_error(path.parent)
    assert message.startswith(f"{path} is not valid TOML:")
    assert "line 3" in message
    assert "Fix the syntax there." in message
    with pytest.raises(ConfigError) as info:
        load_settings(path.parent, environ={})
    assert isinstance(info.value.__cause__, tomllib.TOMLDecodeError)


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "shipyard.toml").write_bytes(b'[project]\nname = "caf\xe9"\n')
    message = config_error(root)
    assert "Cannot read" in message
    assert "UTF-8" in message


def test_unknown_executor_kind(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "p", '[project]\nname = "p"\n\n[executor]\nkind = "spark"\n')
    assert config_error(path.parent) == (
        f"{path}:5: [executor] kind must be one of 'local', got 'spark'. Change it to one of those."
    )


@pytest.mark.parametrize("workers", [0, -3])
def test_max_workers_must_be_positive(tmp_path: Path, workers: int) -> None:
    path = write_toml(
        tmp_path / "p", f'[project]\nname = "p"\n[executor]\nmax_workers = {workers}\n'
    )
    message = config_error(path.parent)
    assert message.startswith(
        f"{path}:4: [executor] max_workers must be at least 1, got {workers}."
    )


def test_config_errors_are_value_errors(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "p", '[project]\nname = "p"\n[executor]\nmax_workers = 0\n')
    with pytest.raises(ValueError, match="at least 1"):
        load_settings(path.parent, environ={})


# -- SHIPYARD_<TABLE>_<KEY> overrides ----------------------------------------------------


def test_every_setting_can_be_overridden_by_the_environment(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", name="from-file")
    environ = {
        "SHIPYARD_PROJECT_NAME": "from-env",
        "SHIPYARD_PROJECT_OWNER": "env-team",
        "SHIPYARD_PROJECT_CONTACTS": "a@example.com, #chan",
        "SHIPYARD_PROJECT_DESCRIPTION": "described",
        "SHIPYARD_PROJECT_PIPELINES": "flows.a,flows.b,",
        "SHIPYARD_STORES_METADATA": "postgresql://db/x",
        "SHIPYARD_STORES_ARTIFACTS": "s3://bucket/p",
        "SHIPYARD_EXECUTOR_KIND": "local",
        "SHIPYARD_EXECUTOR_MAX_WORKERS": "8",
        "SHIPYARD_RUNS_SEED": "1234",
    }
    settings = load_settings(root, environ=environ)

    assert settings.project == ProjectSettings(
        name="from-env",
        owner="env-team",
        contacts=("a@example.com", "#chan"),
        description="described",
        pipelines=("flows.a", "flows.b"),
    )
    assert settings.metadata_url == "postgresql://db/x"
    assert settings.artifacts_url == "s3://bucket/p"
    assert settings.max_workers == 8
    assert type(settings.max_workers) is int
    assert settings.seed == 1234


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write_toml(root, '[project]\nname = "p"\n[executor]\nmax_workers = 2\n[runs]\nseed = 1\n')
    settings = load_settings(root, environ={"SHIPYARD_EXECUTOR_MAX_WORKERS": "6"})
    assert settings.max_workers == 6
    assert settings.seed == 1


def test_os_environ_is_read_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_project(tmp_path / "proj")
    monkeypatch.setenv("SHIPYARD_EXECUTOR_MAX_WORKERS", "8")
    monkeypatch.setenv("SHIPYARD_STORES_METADATA", "sqlite:///elsewhere/m.db")
    settings = load_settings(root)
    assert settings.max_workers == 8
    assert settings.metadata_url == f"sqlite:///{root.resolve()}/elsewhere/m.db"


def test_relative_paths_from_the_environment_resolve_against_the_project(
    tmp_path: Path,
) -> None:
    root = write_project(tmp_path / "proj")
    settings = load_settings(
        root,
        environ={"SHIPYARD_STORES_METADATA": "sqlite:///m.db", "SHIPYARD_STORES_ARTIFACTS": "art"},
    )
    assert settings.metadata_url == f"sqlite:///{root.resolve()}/m.db"
    assert settings.artifacts_url == str(root.resolve() / "art")


@pytest.mark.parametrize("text", ["eight", "8.0", "", "0x10"])
def test_bad_integer_in_the_environment_names_the_variable(tmp_path: Path, text: str) -> None:
    root = write_project(tmp_path / "proj")
    message = config_error(root, {"SHIPYARD_EXECUTOR_MAX_WORKERS": text})
    assert message.startswith(
        "Environment variable SHIPYARD_EXECUTOR_MAX_WORKERS must be an integer"
    )
    assert f"got {text!r}." in message


def test_invalid_value_from_the_environment_blames_the_variable_not_the_file(
    tmp_path: Path,
) -> None:
    root = write_project(tmp_path / "proj")
    kind = config_error(root, {"SHIPYARD_EXECUTOR_KIND": "spark"})
    assert kind.startswith(
        "Environment variable SHIPYARD_EXECUTOR_KIND must be one of 'local', got 'spark'."
    )
    workers = config_error(root, {"SHIPYARD_EXECUTOR_MAX_WORKERS": "0"})
    assert workers.startswith(
        "Environment variable SHIPYARD_EXECUTOR_MAX_WORKERS must be at least 1, got 0."
    )
    assert "shipyard.toml" not in kind + workers


def test_foreign_and_reserved_shipyard_variables_are_ignored(tmp_path: Path) -> None:
    root = write_project(tmp_path / "proj", name="kept")
    settings = load_settings(
        root,
        environ={
            "SHIPYARD_LOG_LEVEL": "debug",
            "SHIPYARD_PROJECT_DIR": str(tmp_path / "elsewhere"),
            "SHIPYARD_TOKEN": "x",
            "SHIPYARD_EXECUTOR_COLOUR": "red",
            "OTHER_EXECUTOR_MAX_WORKERS": "0",
        },
    )
    assert settings.project.name == "kept"
    assert settings.max_workers == 4
    assert settings.root == root.resolve()


# -- properties --------------------------------------------------------------------------

_names = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
_filler = st.lists(st.sampled_from(["", "# a comment", "   ", "# [not] = a header"]), max_size=2)


@st.composite
def _documents(draw: st.DrawFn) -> tuple[str, dict[tuple[str, str | None], int]]:
    """A TOML document of tables and keys, with where each header and key is written."""
    sections = draw(st.lists(_names, min_size=1, max_size=4, unique=True))
    lines: list[str] = []
    where: dict[tuple[str, str | None], int] = {}
    for section in sections:
        lines += draw(_filler)
        pad = draw(st.sampled_from(["", " "]))
        lines.append(f"[{pad}{section}{pad}]")
        where[section, None] = len(lines)
        for key in draw(st.lists(_names, max_size=4, unique=True)):
            lines += draw(_filler)
            indent = draw(st.sampled_from(["", "  "]))
            spacing = draw(st.sampled_from(["=", " = ", "  ="]))
            value = draw(st.sampled_from(['"v"', "1", "[1, 2]", "true"]))
            lines.append(f"{indent}{key}{spacing}{value}")
            where[section, key] = len(lines)
    return "\n".join(lines) + "\n", where


@given(_documents())
def test_line_of_finds_every_header_and_key(
    document: tuple[str, dict[tuple[str, str | None], int]],
) -> None:
    text, where = document
    parsed = tomllib.loads(text)  # the generator writes valid TOML
    assert set(parsed) == {section for section, key in where if key is None}
    for (section, key), line in where.items():
        assert _line_of(text, section, key) == line


@given(_documents(), _names)
def test_line_of_is_one_for_what_is_not_there(
    document: tuple[str, dict[tuple[str, str | None], int]], missing: str
) -> None:
    text, where = document
    sections = {section for section, _ in where}
    if missing not in sections:
        assert _line_of(text, missing, None) == 1
    for section in sections:
        if (section, missing) not in where:
            assert _line_of(text, section, missing) == 1


@pytest.fixture(scope="module")
def plain_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("env") / "proj")


@given(st.integers(min_value=1, max_value=10**12), st.sampled_from(["", " ", "  "]))
def test_integer_overrides_round_trip(plain_project: Path, number: int, pad: str) -> None:
    environ = {
        "SHIPYARD_EXECUTOR_MAX_WORKERS": f"{pad}{number}{pad}",
        "SHIPYARD_RUNS_SEED": str(-number),
    }
    settings = load_settings(plain_project, environ=environ)
    assert settings.max_workers == number
    assert settings.seed == -number


_words = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters=",", exclude_categories=["Cs", "Cc"]),
    min_size=1,
    max_size=12,
).filter(lambda word: word.strip() == word)


@given(st.lists(_words, max_size=5), _words)
def test_list_and_string_overrides_round_trip(
    plain_project: Path, contacts: list[str], owner: str
) -> None:
    environ = {"SHIPYARD_PROJECT_CONTACTS": ", ".join(contacts), "SHIPYARD_PROJECT_OWNER": owner}
    settings = load_settings(plain_project, environ=environ)
    assert settings.project.contacts == tuple(contacts)
    assert settings.project.owner == owner


def test_the_objectives_table_is_kept_as_written_for_the_evaluation_layer(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "shipyard.toml").write_text(
        '[project]\nname = "p"\n\n[objectives]\ntask = "binary"\n\n[objectives.costs]\n'
        "false_positive = 5.0\n",
        encoding="utf-8",
    )
    settings = load_settings(root, environ={})
    assert settings.objectives == {"task": "binary", "costs": {"false_positive": 5.0}}
    other = tmp_path / "q"
    other.mkdir()
    (other / "shipyard.toml").write_text('[project]\nname = "q"\n', encoding="utf-8")
    assert load_settings(other, environ={}).objectives == {}
