"""Admin pages, one module per group; importing them attaches their routes to ``bp``."""

from app.admin import auth, bp, catalog, dashboard, orders, settings, staff  # noqa: F401
from app.admin.decorators import guard_blueprint

bp.before_request(guard_blueprint)
