"""What the pickers' include (templates/admin/_pickers.html) needs from the server."""

from __future__ import annotations

from app.admin import bp
from app.admin.people import picked_label


@bp.app_template_global()
def region_path(code: str | None) -> list[str]:
    """The province, city and district codes leading to ``code`` (a GB/T 2260 code of any
    level), for the region picker to show what a form sent back; ``[]`` for no code."""
    code = (code or "").strip()
    if len(code) != 6 or not (code.isascii() and code.isdecimal()):
        return []
    path = [code[:2] + "0000"]
    for part in (code[:4] + "00", code):
        if part not in path:
            path.append(part)
    return path


@bp.app_template_global()
def person_label(kind: str, value: str | int | None) -> str:
    """The label of the person a form sent back (``演示·小美（分销员）``), or ``""``."""
    return picked_label(kind, str(value or ""))
