"""Whole numbers from query strings and forms, bounded before they reach the database.

``str.isdigit`` lets through digits ``int`` refuses ('²'; the app checks
``isdecimal`` instead, which ``int`` always accepts), and digits alone do not stop a
number no column can hold ('9' × 40: SQLite raises OverflowError, PostgreSQL an
out-of-range error), so page numbers and row ids typed into a URL go through here.
"""

from __future__ import annotations

from flask import request

MAX_ID = 2**31 - 1  # PostgreSQL ``integer``: no row id is larger
MAX_PAGE = 99_999  # page numbers past it are all the same empty page


def bounded_int(raw: str | None, high: int = MAX_ID) -> int | None:
    """``raw`` as an integer in 1..``high`` (ASCII digits only, spaces trimmed), else None."""
    raw = (raw or "").strip()
    if not (raw.isascii() and raw.isdecimal()) or len(raw) > len(str(high)):
        return None
    value = int(raw)
    return value if 1 <= value <= high else None


def page_number(raw: str | None) -> int:
    """A page number from input: 1 for anything that is not a page."""
    return bounded_int(raw, MAX_PAGE) or 1


def page_arg(name: str = "page") -> int:
    """The request's ``?page=`` (or ``name``) as a page number."""
    return page_number(request.args.get(name))
