"""What the metadata store's query mixins share: row type and the transaction verbs."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

T = TypeVar("T")
Row = dict[str, Any]
WRITE_ATTEMPTS = 12


class Queries:
    """The two verbs :class:`~shipyard.storage.metadata.MetadataStore` gives its mixins."""

    if TYPE_CHECKING:  # MetadataStore defines them

        def _read(self) -> AbstractContextManager[sa.Connection]: ...
        def _write(self, work: Callable[[sa.Connection], T]) -> T: ...
