"""Admin pages. (Filled in by the admin work.)"""

from app.admin import bp


@bp.get("/login")
def login():
    return "TODO", 501
