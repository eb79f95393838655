"""Run something after a commit that wrote to some tables (cache versions).

Page and fragment caches are keyed by a version in Redis; whoever commits a change to a
table the cache depends on must bump it. A ``WriteWatch`` notices such writes on any
session, through the ORM (objects flushed) or a bulk ``insert/update/delete`` statement,
and calls ``on_commit`` once after the commit. A rolled-back change may leave the flag
set: the extra bump it causes is harmless.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session


class WriteWatch:
    """Call ``on_commit()`` after every commit that wrote to one of ``models``' tables."""

    def __init__(self, flag: str, models: tuple[type, ...], on_commit: Callable[[], None]):
        self.flag = flag  # the key in ``session.info`` that marks a watched write
        self.models = models
        self.tables = frozenset(model.__tablename__ for model in models)
        self.on_commit = on_commit
        self._installed = False

    def _after_flush(self, session: Session, _context) -> None:
        for obj in (*session.new, *session.dirty, *session.deleted):
            if isinstance(obj, self.models):
                session.info[self.flag] = True
                return

    def _do_orm_execute(self, state: ORMExecuteState) -> None:
        if not (state.is_update or state.is_delete or state.is_insert):
            return
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in self.tables:
            state.session.info[self.flag] = True

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(self.flag, False):
            self.on_commit()

    def install(self) -> None:
        """Listen to every session (once per process; tests build many apps)."""
        if self._installed:
            return
        event.listen(Session, "after_flush", self._after_flush)
        event.listen(Session, "do_orm_execute", self._do_orm_execute)
        event.listen(Session, "after_commit", self._after_commit)
        self._installed = True
