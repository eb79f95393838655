"""Helpers for the after-sale and logistics tests: clients, photos, orders in a state."""

from __future__ import annotations

import io

from PIL import Image

from app.extensions import db
from app.orders.services import mark_paid
from app.orders.shipping import ship_order
from tests.support.admin import csrf_token, fresh_client
from tests.support.pay import fresh, new_order, prepay, sandbox_pay, wait_until


def photo(color: str = "red", size: int = 120, fmt: str = "PNG") -> io.BytesIO:
    """A small real image file (Pillow), as a phone would upload it."""
    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, fmt)
    out.seek(0)
    return out


def customer_client(app, login_as, user):
    """A signed-in customer client and its CSRF token (session-bound)."""
    client = fresh_client(app)
    login_as(client, user)
    token = client.get("/cart/session").get_json()["csrf_token"]
    return client, token


def staff_client(app, login_as, staff):
    """A signed-in staff client and a CSRF token from an admin page."""
    client = fresh_client(app)
    login_as(client, staff)
    return client, csrf_token(client, "/admin/")


def paid_order(make, *, price_fen: int = 1000, quantity: int = 2, shipped: bool = False):
    """An order marked paid directly (no WeChat involved), optionally shipped."""
    order, _sku_id = new_order(make, price_fen=price_fen, quantity=quantity)
    mark_paid(order, transaction_id=f"42{order.id:020d}", amount_fen=order.total_fen)
    db.session.commit()
    if shipped:
        ship_order(order, "SF", f"SF{order.id:010d}", "staff:1")
        db.session.commit()
    return order


def apply(client, token, order, *, photos=(), **fields):
    """POST the after-sale form of the order's first line; the response."""
    line = order.lines[0]
    data = {
        "csrf_token": token,
        "kind": "refund_only",
        "quantity": str(line.quantity),
        "reason": "不想要了",
        "description": "",
        **fields,
    }
    if photos:
        data["photos"] = [(p, f"p{i}.png") for i, p in enumerate(photos)]
    return client.post(
        f"/orders/{order.id}/lines/{line.id}/aftersale",
        data=data,
        content_type="multipart/form-data",
    )


def paid_through_stand_in(make, sandbox, *, price_fen: int = 1000, quantity: int = 2):
    """An order paid at the WeChat Pay stand-in (its signed notice reaches the live
    server), then shipped: refunds of it can really go back through WeChat Pay."""
    order, _sku_id = new_order(make, price_fen=price_fen, quantity=quantity)
    prepay(order)
    sandbox_pay(sandbox, order.number)
    order = wait_until(lambda: (o := fresh(type(order), order.id)).status == "paid" and o)
    ship_order(order, "SF", f"SF{order.id:010d}", "staff:1")
    db.session.commit()
    return order
