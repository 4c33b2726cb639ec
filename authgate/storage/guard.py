"""Database errors become ``StorageError``: callers deny, and the cause stays in the chain."""
from __future__ import annotations

from types import TracebackType
from typing import Literal

from sqlalchemy.exc import SQLAlchemyError

from authgate.core.errors import StorageError


class storage_guard:  # noqa: N801 - used as a context manager, reads like a statement
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        if isinstance(exc, SQLAlchemyError):
            raise StorageError(f"database error: {type(exc).__name__}") from exc
        return False
