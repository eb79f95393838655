"""Helpers for the order API tests: addresses, placing orders, stock."""

from __future__ import annotations

from sqlalchemy import select

from app.catalog.models import Sku
from app.extensions import db
from app.orders.models import Address
from tests.support import factories


def sign_in(client, login_as, user) -> dict:
    """Sign ``client`` in as ``user``; return the headers a page's fetch() sends (CSRF)."""
    login_as(client, user)
    token = client.get("/cart/session").get_json()["csrf_token"]
    return {"X-CSRFToken": token}


def make_address(user_id: int, **fields) -> Address:
    """An address of ``user_id`` with the order API tests' phone number (committed)."""
    return factories.address(user_id, **{"phone": "13800138000", **fields})


def place(client, headers, sku_id: int, quantity: int = 1, address_id: int | None = None, **extra):
    user_address = address_id or db.session.scalar(
        select(Address.id).order_by(Address.id.desc()).limit(1)
    )
    body = {"items": [{"sku_id": sku_id, "quantity": quantity}], "address_id": user_address}
    body.update(extra)
    return client.post("/api/v1/orders", json=body, headers=headers)


def stock_of(sku_id: int) -> int:
    db.session.rollback()
    return db.session.scalar(select(Sku.stock).where(Sku.id == sku_id))
