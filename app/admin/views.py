"""Admin pages, one module per group; importing them attaches their routes to ``bp``."""

from app.admin import (  # noqa: F401
    account,
    agents,
    api_tokens,
    audit,
    auth,
    bp,
    catalog,
    coupons,
    dashboard,
    distribution,
    distribution_funnel,
    distribution_money,
    distribution_simulator,
    merchants,
    notifications,
    orders,
    posters,
    reports,
    settings,
    staff,
    tasks,
)
from app.admin.decorators import guard_blueprint

bp.before_request(guard_blueprint)
