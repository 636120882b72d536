"""Database helpers shared by the module services."""

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.db import IntegrityError, transaction

F = TypeVar("F", bound=Callable[..., Any])


def retry_on_conflict(func: F) -> F:
    """Run a write once more when it lost a race on a unique key (two first PUTs of the same new object at once:
    the second insert fails; run again, it finds the row and replaces it). Only outside an outer transaction, where
    the failed attempt has rolled back completely."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except IntegrityError:
            if transaction.get_connection().in_atomic_block:
                raise
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
