"""Reads that stay put for the length of one batch of paid-order follow-ups.

The paid-order pipeline (``app/earnings/on_paid.py``) follows many orders up in one
transaction. Much of what each order reads is the same for all of them and is never
written by the pipeline: the settings rows, the grades that can be reached, the commission
and dividend rules of a product, the region agents of a district, the merchant levels.
Inside ``batch_scope()`` such a read goes through ``memo``: the first order loads it, the
others get the same value (and the same ORM rows, kept alive: the session's identity map
holds them weakly, so a row nobody holds would be read again). Outside a scope ``memo``
simply loads, so every other caller reads as before.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from app.extensions import db

T = TypeVar("T")
_KEY = "batch_memo"


@contextmanager
def batch_scope() -> Iterator[None]:
    """Remember ``memo`` reads until the block ends (nested scopes share the outer one)."""
    info = db.session().info
    if _KEY in info:
        yield
        return
    info[_KEY] = {}
    try:
        yield
    finally:
        info.pop(_KEY, None)


def memo(key: Hashable, load: Callable[[], T]) -> T:
    """``load()``, once per ``key`` inside a ``batch_scope``; every time outside one."""
    store = db.session().info.get(_KEY)
    if store is None:
        return load()
    if key not in store:
        store[key] = load()
    return store[key]


def memo_set(key: Hashable, value: object) -> None:
    """Replace what ``memo`` remembers for ``key`` inside a ``batch_scope`` (nothing
    outside one)."""
    store = db.session().info.get(_KEY)
    if store is not None:
        store[key] = value


def in_batch() -> bool:
    """Whether a ``batch_scope`` is open."""
    return _KEY in db.session().info
