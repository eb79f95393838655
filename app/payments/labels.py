"""Chinese words for what WeChat Pay says about a payment, in one place.

A payment transaction row (``PaymentTransaction``) keeps WeChat's own state code as it came
(``trade_state`` of an order query or notice: SUCCESS, NOTPAY...; ``status`` of a refund:
SUCCESS, PROCESSING...), so the record stays exact; staff read these labels instead.
Refund codes and trade codes overlap (SUCCESS, CLOSED), so the row's kind decides which
table applies.
"""

from __future__ import annotations

#: what each kind of transaction row records (``record_transaction``'s ``kind``)
PAYMENT_KINDS = {
    "prepay": "发起支付",
    "paid": "支付成功",
    "query": "查单",
    "closed": "关闭订单",
    "unmatched": "无法入账的付款",
    "refund": "申请退款",
    "refund_done": "退款成功",
    "refund_closed": "退款关闭",
    "refund_abnormal": "退款异常",
}

#: WeChat Pay ``trade_state`` (JSAPI order query and payment notice)
TRADE_STATE_LABELS = {
    "SUCCESS": "支付成功",
    "REFUND": "转入退款",
    "NOTPAY": "未支付",
    "CLOSED": "已关闭",
    "REVOKED": "已撤销",
    "USERPAYING": "用户支付中",
    "PAYERROR": "支付失败",
}

#: WeChat Pay refund ``status`` (refund API answer and refund notice)
REFUND_STATE_LABELS = {
    "SUCCESS": "退款成功",
    "CLOSED": "退款关闭",
    "PROCESSING": "退款处理中",
    "ABNORMAL": "退款异常",
}


def payment_kind_label(kind: str) -> str:
    """The Chinese name of a transaction row's kind (the code itself if unknown)."""
    return PAYMENT_KINDS.get(kind, kind)


def payment_state_label(kind: str, state: str | None) -> str:
    """The Chinese label of WeChat's state code on a transaction row of ``kind``.

    Refund rows read the refund table, the others the trade table; an unknown code is
    shown as "未知状态（CODE）" so staff can still look it up; no code gives "—".
    """
    if not state:
        return "—"
    table = REFUND_STATE_LABELS if kind.startswith("refund") else TRADE_STATE_LABELS
    label = table.get(state.upper())
    return label if label else f"未知状态（{state}）"
