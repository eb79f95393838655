"""JSON API under /api/v1 for the mini-program client and the merchant Open API.

Customer endpoints live on ``app.api.blueprints.bp`` (session cookie, CSRF on), merchant
endpoints on ``admin_bp`` (bearer token, CSRF-exempt). Every endpoint is decorated with
``app.api.spec.spec.validate`` so its pydantic models both validate it and appear in
``GET /api/v1/openapi.json``; tests/test_api_openapi.py fails for a route left out.
"""

from flask import Flask

from app.api.blueprints import admin_bp, bp
from app.extensions import csrf


def register_api(app: Flask) -> None:
    """Mount the API blueprints (their views are attached when the modules are imported)."""
    # Factory wiring: routes attach on import; at the top, importing any one API module
    # (this package runs first) would load them all.
    from app.api import (  # noqa: F401
        addresses,
        admin_coupons,
        admin_distribution,
        admin_incentives,
        admin_orders,
        admin_products,
        agents,
        cart,
        coupons,
        customer,
        distributor,
        distributor_funnel,
        distributor_money,
        distributor_people,
        distributor_products,
        incentives,
        merchants,
        orders,
        posters,
        staff_people,
        wechat,
        wxa,
    )

    # Bearer tokens are not sent by browsers on their own, so there is no CSRF to defend
    # against; the cookie side (bp) needs the X-CSRFToken header, checked by its own
    # before_request after the sign-in check (blueprints.require_customer_for_writes).
    csrf.exempt(admin_bp)
    csrf.exempt(bp)
    app.register_blueprint(bp)
    app.register_blueprint(admin_bp)
