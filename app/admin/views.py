"""Admin pages, one module per group; importing them attaches their routes to ``bp``."""

from app.admin import (  # noqa: F401
    account,
    aftersale,
    agents,
    api_tokens,
    audit,
    auth,
    bp,
    catalog,
    catalog_uploads,
    coupons,
    customers,
    dashboard,
    discounts,
    distribution,
    distribution_funnel,
    distribution_money,
    distribution_simulator,
    merchants,
    notifications,
    orders,
    pickers,
    posters,
    reports,
    risk,
    service_settings,
    settings,
    settings_product,
    staff,
    tasks,
)
from app.admin.decorators import guard_blueprint

bp.before_request(guard_blueprint)
