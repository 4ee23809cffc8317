"""``shipyard.monitoring`` exports exactly its curated names, each importable."""

from __future__ import annotations

import pytest

import shipyard.monitoring as monitoring


def test_every_exported_name_resolves() -> None:
    for name in monitoring.__all__:
        assert getattr(monitoring, name).__name__ == name


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        monitoring.no_such_thing  # noqa: B018
