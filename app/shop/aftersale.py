"""Customer H5 pages of after-sale (售后) and logistics (查看物流).

An edge: forms post here (multipart, CSRF field), the view checks the photos the way
product images are checked (``app/admin/images.check_image``: decoded and re-encoded with
Pillow, stored under a random name), calls ``app/orders/aftersale.py``, commits once and
redirects. Refused input re-renders the form with a Chinese message (422), never a 500.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import login_required

from app.accounts.guards import page_customer_id
from app.admin.images import check_image, remove_files
from app.catalog.services import CatalogError
from app.core.money import parse_yuan
from app.core.params import MAX_ID, bounded_int
from app.core.status import InvalidTransition
from app.extensions import db
from app.orders import aftersale
from app.orders.models import COMPLETED, SHIPPED, Order, OrderLine, Refund
from app.orders.queries import own_order_or_404, refunds_by_line
from app.orders.refunds import refundable_quantity
from app.orders.services import OrderError
from app.orders.shipping import CARRIERS
from app.orders.states import REFUND_STATUS_LABELS
from app.orders.tracking import track

bp = Blueprint("aftersale", __name__)


@bp.context_processor
def aftersale_globals() -> dict:
    return {"refund_labels": REFUND_STATUS_LABELS, "kind_labels": aftersale.KIND_LABELS}


def _customer_id() -> int:
    return page_customer_id()


def _own_order(order_id: int) -> Order:
    return own_order_or_404(order_id, _customer_id())


def _own_refund(refund_id: int) -> Refund:
    refund = db.session.get(Refund, refund_id) if refund_id <= MAX_ID else None
    if refund is None or refund.order.user_id != _customer_id():
        abort(404, description="售后申请不存在")
    return refund


def _line_of(order: Order, line_id: int) -> OrderLine:
    line = db.session.get(OrderLine, line_id) if line_id <= MAX_ID else None
    if line is None or line.order_id != order.id:
        abort(404, description="订单中没有该商品")
    return line


def _store_photos(files) -> list[Path]:
    """Check, re-encode and write the uploaded photos; CatalogError when one is refused."""
    files = [f for f in files if f and f.filename]
    if len(files) > aftersale.MAX_PHOTOS:
        raise CatalogError(f"最多上传 {aftersale.MAX_PHOTOS} 张图片", "photos")
    limit = current_app.config["MAX_IMAGE_BYTES"]
    checked = [check_image(f.stream.read(limit + 1), f.filename or "", limit) for f in files]
    folder = Path(current_app.config["UPLOAD_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for image in checked:
        path = folder / f"a{secrets.token_hex(16)}{image.extension}"
        path.write_bytes(image.data)
        written.append(path)
    return written


@bp.route("/orders/<int:order_id>/lines/<int:line_id>/aftersale", methods=["GET", "POST"])
@login_required
def apply(order_id: int, line_id: int):
    """Apply for after-sale on one line: kind, quantity, amount, reason, words, photos."""
    order = _own_order(order_id)
    line = _line_of(order, line_id)
    refunds = refunds_by_line([order.id]).get(line.id, [])
    left = refundable_quantity(order, line, refunds)
    amounts = {q: aftersale.amount_for(line, q, refunds) for q in range(1, left + 1)}
    error = None
    form = request.form
    if request.method == "POST" and left:
        quantity = bounded_int(form.get("quantity"), left) or 0
        raw_amount = (form.get("amount_yuan") or "").strip()
        written: list[Path] = []
        try:
            amount_fen = parse_yuan(raw_amount) if raw_amount else None
        except ValueError:
            error = "退款金额格式不正确，例如 12.50"
        if error is None:
            try:
                written = _store_photos(request.files.getlist("photos"))
                refund = aftersale.apply(
                    order,
                    line,
                    kind=form.get("kind", ""),
                    quantity=quantity,
                    amount_fen=amount_fen,
                    reason=form.get("reason", ""),
                    description=form.get("description", ""),
                    photos=[p.name for p in written],
                    actor=f"user:{order.user_id}",
                )
                db.session.commit()
            except (CatalogError, OrderError) as exc:
                db.session.rollback()
                remove_files(written)
                error = exc.message
            except Exception:
                db.session.rollback()
                remove_files(written)
                raise
            else:
                flash("售后申请已提交，请等待商家处理", "success")
                return redirect(url_for("aftersale.detail", refund_id=refund.id))
    return render_template(
        "orders/aftersale_apply.html",
        order=order,
        line=line,
        left=left,
        amounts=amounts,
        kinds=aftersale.kinds_for(order),
        kind_hints=aftersale.KIND_HINTS,
        reasons=aftersale.REASONS,
        max_photos=aftersale.MAX_PHOTOS,
        error=error,
        form=form,
    ), 422 if error else 200


@bp.get("/aftersale/<int:refund_id>")
@login_required
def detail(refund_id: int):
    """One after-sale request: status, what comes next, the timeline, actions."""
    refund = _own_refund(refund_id)
    return render_template(
        "orders/aftersale_detail.html",
        refund=refund,
        order=refund.order,
        line=refund.line,
        step=aftersale.customer_step(refund),
        history=list(reversed(aftersale.timeline(refund))),
        carriers=[name for code, name in CARRIERS.items() if code != "OTHER"] + ["其他"],
        error=None,
    )


@bp.post("/aftersale/<int:refund_id>/cancel")
@login_required
def cancel(refund_id: int):
    """撤销: withdraw a request nobody has acted on yet."""
    refund = _own_refund(refund_id)
    try:
        aftersale.cancel(refund, f"user:{refund.order.user_id}")
        db.session.commit()
        flash("已撤销售后申请", "success")
    except InvalidTransition:
        db.session.rollback()
        flash("商家已处理，不能撤销了", "error")
    return redirect(url_for("aftersale.detail", refund_id=refund_id))


@bp.post("/aftersale/<int:refund_id>/return")
@login_required
def send_return(refund_id: int):
    """The customer enters the return parcel's carrier and tracking number."""
    refund = _own_refund(refund_id)
    try:
        aftersale.send_return(
            refund,
            request.form.get("carrier", ""),
            request.form.get("tracking_number", ""),
            f"user:{refund.order.user_id}",
        )
        db.session.commit()
        flash("已提交退货物流，等待商家收货", "success")
    except OrderError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    except InvalidTransition:
        db.session.rollback()
        flash("当前状态不能填写退货物流", "error")
    return redirect(url_for("aftersale.detail", refund_id=refund_id))


@bp.get("/orders/<int:order_id>/logistics")
@login_required
def logistics(order_id: int):
    """查看物流: carrier, number (复制) and 快递100's timeline, or a link to look it up."""
    order = _own_order(order_id)
    if order.status not in (SHIPPED, COMPLETED) or not order.tracking_number:
        abort(404, description="订单还没有物流信息")
    tracking = track(order.carrier or "", order.tracking_number, order.receiver_phone)
    return render_template("orders/logistics.html", order=order, tracking=tracking)
