"""客户 (staff): every customer with phone, bound distributor, orders and spend; one
customer's orders, binding history and refunds. Read-only; queries in customer_queries."""

from __future__ import annotations

from flask import render_template, request

from app.accounts.models import User
from app.accounts.names import display_name
from app.admin import bp
from app.admin.customer_queries import MAX_QUERY, MAX_ROWS, customer_detail, customer_page
from app.admin.decorators import staff_required
from app.admin.people import actor_names, actor_text
from app.core.params import page_arg
from app.distribution.admin_labels import BINDING_ACTION_LABELS, BINDING_SOURCE_LABELS
from app.extensions import db
from app.orders.states import ORDER_STATUS_LABELS, REFUND_STATUS_LABELS


@bp.get("/customers")
@staff_required
def customers():
    """Customers, newest first, searchable by nickname, phone, number or distributor code."""
    q = (request.args.get("q") or "").strip()[:MAX_QUERY]
    return render_template(
        "admin/customers.html",
        pagination=customer_page(q, page_arg()),
        q=q,
        args={"q": q} if q else {},
    )


@bp.get("/customers/<int:customer_id>")
@staff_required
def customer_detail_page(customer_id: int):
    """One customer: figures, addresses, binding, orders, binding history, refunds."""
    user = db.get_or_404(User, customer_id)
    detail = customer_detail(user)
    actors = actor_names(e.actor for e in detail.events)
    return render_template(
        "admin/customer_detail.html",
        c=detail,
        name=display_name(user.nickname, user.id),
        max_rows=MAX_ROWS,
        actor=lambda a: actor_text(a, actors),
        who=lambda d_id: _distributor_name(detail, d_id),
        order_labels=ORDER_STATUS_LABELS,
        refund_labels=REFUND_STATUS_LABELS,
        action_labels=BINDING_ACTION_LABELS,
        source_labels=BINDING_SOURCE_LABELS,
    )


def _distributor_name(detail, distributor_id: int | None) -> str:
    d = detail.people.get(distributor_id) if distributor_id else None
    if d is None:
        return "—"
    return f"{display_name(d.user.nickname if d.user else '', d.user_id)}（{d.code}）"
