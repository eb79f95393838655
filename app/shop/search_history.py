"""Search history: each customer's recent searches and the shop's hot terms (热门搜索).

A term counts towards 热门搜索 only when its search found something, so typos and junk
never show up there; it shows once searched ``SEARCH_HOT_MIN_COUNT`` times. Recent
searches are kept per customer (the last ``RECENT_LIMIT`` terms), found or not. Services
flush; the caller commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from app.core.sql import dialect_insert
from app.core.time import utcnow
from app.extensions import db
from app.shop.models import RecentSearch, SearchTerm

RECENT_LIMIT = 10
HOT_LIMIT = 10


def record_search(term: str, user_id: int | None, found: bool, now: datetime | None = None) -> None:
    """Count a search of ``term`` (a cleaned query, not empty): towards the hot terms when
    it ``found`` products, and in ``user_id``'s recent searches when signed in."""
    if not term:
        return
    now = now or utcnow()
    term = term[:64]
    if found:
        db.session.execute(
            dialect_insert(SearchTerm)
            .values(term=term, count=1, last_searched_at=now)
            .on_conflict_do_update(
                index_elements=["term"],
                set_={"count": SearchTerm.count + 1, "last_searched_at": now},
            )
        )
    if user_id is not None:
        db.session.execute(
            dialect_insert(RecentSearch)
            .values(user_id=user_id, term=term, searched_at=now)
            .on_conflict_do_update(index_elements=["user_id", "term"], set_={"searched_at": now})
        )
        keep = select(RecentSearch.id).where(RecentSearch.user_id == user_id)
        keep = keep.order_by(RecentSearch.searched_at.desc(), RecentSearch.id.desc())
        kept = list(db.session.scalars(keep.limit(RECENT_LIMIT)))
        db.session.execute(
            delete(RecentSearch).where(
                RecentSearch.user_id == user_id, RecentSearch.id.not_in(kept)
            )
        )
    db.session.flush()


def recent_terms(user_id: int) -> list[str]:
    """The customer's recent searches, newest first."""
    return list(
        db.session.scalars(
            select(RecentSearch.term)
            .where(RecentSearch.user_id == user_id)
            .order_by(RecentSearch.searched_at.desc(), RecentSearch.id.desc())
            .limit(RECENT_LIMIT)
        )
    )


def clear_recent(user_id: int) -> None:
    """Forget the customer's recent searches (清除)."""
    db.session.execute(delete(RecentSearch).where(RecentSearch.user_id == user_id))
    db.session.flush()


def hot_terms(min_count: int) -> list[str]:
    """The most searched terms with results, at least ``min_count`` times each."""
    return list(
        db.session.scalars(
            select(SearchTerm.term)
            .where(SearchTerm.count >= min_count)
            .order_by(SearchTerm.count.desc(), SearchTerm.last_searched_at.desc())
            .limit(HOT_LIMIT)
        )
    )
