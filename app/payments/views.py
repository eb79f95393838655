"""The doors WeChat Pay calls: ``/pay/notify``, ``/pay/refund-notify``, ``/pay/transfer-notify``.

Thin edges: read at most ``MAX_NOTICE_BYTES``, verify, apply, commit once, and only after
the commit enqueue the follow-up job. Success is 204 with no body (WeChat stops retrying);
a refusal is 4xx with the APIv3 failure body ``{"code": "FAIL", "message": ...}`` and
nothing changed, so a forged or wrong notice never touches an order.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from app.core.metrics import count_pay_notice
from app.core.observe import note
from app.distribution.distributors import DistributionError
from app.distribution.withdrawals import complete_transfer
from app.extensions import csrf, db
from app.payments.notices import (
    MAX_NOTICE_BYTES,
    NoticeRejected,
    apply_payment,
    apply_refund,
    verify_notice,
)
from jobs.payments import enqueue_order_paid
from jobs.risk import enqueue_refund_check

bp = Blueprint("payments", __name__, url_prefix="/pay")


def _fail(status: int, message: str):
    return jsonify(code="FAIL", message=message), status


def _read_body() -> bytes:
    """The raw body, refusing anything larger than a notice can be before reading it."""
    length = request.content_length
    if length is not None and length > MAX_NOTICE_BYTES:
        raise NoticeRejected(413, "通知内容过大")
    body = request.stream.read(MAX_NOTICE_BYTES + 1)
    if len(body) > MAX_NOTICE_BYTES:
        raise NoticeRejected(413, "通知内容过大")
    return body


@bp.errorhandler(NoticeRejected)
def _rejected(err: NoticeRejected):
    db.session.rollback()
    current_app.logger.warning("pay notice rejected on %s: %s", request.path, err.message)
    return _fail(err.status, err.message)


@bp.errorhandler(HTTPException)
def _http_error(err: HTTPException):
    return _fail(err.code or 400, "请求无效")


@bp.errorhandler(Exception)
def _unexpected(err: Exception):
    # A 5xx makes WeChat retry later, which is what we want when e.g. the database is down.
    db.session.rollback()
    current_app.logger.exception("pay notice failed on %s", request.path)
    return _fail(500, "系统繁忙")


@bp.post("/notify")
@csrf.exempt
def notify():
    """Payment notice (TRANSACTION.SUCCESS): mark the order paid once."""
    try:
        notice = verify_notice(request.headers, _read_body())
        out_trade_no = notice.resource.get("out_trade_no")
        if isinstance(out_trade_no, str):
            note(out_trade_no=out_trade_no, order_number=out_trade_no)
        order, first = apply_payment(notice.resource)
        # Read the id before the commit: afterwards the order is expired and ``order.id``
        # would cost a SELECT.
        order_id = order.id if first and order is not None else None
        db.session.commit()
    except NoticeRejected:
        count_pay_notice("rejected")
        raise
    except Exception:
        count_pay_notice("error")
        raise
    count_pay_notice("paid" if order_id is not None else "duplicate")
    if order_id is not None:
        enqueue_order_paid(order_id)
    return "", 204


@bp.post("/refund-notify")
@csrf.exempt
def refund_notify():
    """Refund notice (REFUND.SUCCESS / CLOSED / ABNORMAL): complete or fail the refund once."""
    notice = verify_notice(request.headers, _read_body())
    refund, first = apply_refund(notice.resource)
    order_id, refund_id = (refund.order_id, refund.id) if first else (None, 0)
    db.session.commit()
    if order_id is not None:
        enqueue_refund_check(order_id, refund_id)  # the risk checks, after the commit
    return "", 204


@bp.post("/transfer-notify")
@csrf.exempt
def transfer_notify():
    """Transfer bill notice (MCHTRANSFER.BILL.FINISHED): pay or fail the withdrawal once."""
    notice = verify_notice(request.headers, _read_body())
    resource = notice.resource
    if resource.get("mch_id") != current_app.config["WECHAT_PAY_MCHID"]:
        raise NoticeRejected(400, "商户号不匹配")
    out_bill_no, state = resource.get("out_bill_no"), resource.get("state")
    if not isinstance(out_bill_no, str) or not isinstance(state, str):
        raise NoticeRejected(400, "缺少转账单号或状态")
    amount = resource.get("transfer_amount")
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise NoticeRejected(400, "金额格式错误")
    try:
        complete_transfer(out_bill_no, state, resource)
    except DistributionError as err:
        raise NoticeRejected(err.status, err.message) from None
    db.session.commit()
    return "", 204
