"""Admin pages of risk control (风控): the review queue, a person's risk page, settings.

The queue lists the held earnings with the evidence side by side (buyer and distributor);
staff release a hold (the money settles) or reject it with a reason (the money is
reversed). Each decision happens once and is audited (``app/risk/review.py``).
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from app.accounts.models import User
from app.admin import bp
from app.admin.decorators import staff_required
from app.admin.forms import ActionForm
from app.core.audit import audited, edge_actor, single
from app.extensions import db
from app.ledger.holds import HELD_NOTE
from app.ledger.models import HOLD_HELD, HOLD_REJECTED, HOLD_RELEASED, LedgerHold
from app.risk import review
from app.risk.linked import person
from app.risk.models import SIGNAL_LABELS, RiskSettings
from app.risk.signals import get_risk_settings

TABS = ((HOLD_HELD, "待审核"), (HOLD_RELEASED, "已放行"), (HOLD_REJECTED, "已驳回"))

# (field, label, low, high, hint) of the thresholds; the switches are SWITCHES.
THRESHOLDS = (
    ("ring_min_buyers", "同一收货信息的买家数达到", 2, 1000, "个不同买家（同一分销员名下）"),
    ("refund_rate_min_orders", "退款率：至少已结算订单", 1, 100000, "单后才比较"),
    ("refund_rate_factor_pct", "退款率：达到全店的", 100, 100000, "%（百分比）"),
    ("refund_rate_floor_bp", "退款率：且不低于", 1, 10000, "‱（万分比，2000 = 20%）"),
    ("binding_burst_per_hour", "一小时内新绑定超过", 1, 100000, "个"),
    ("binding_ip_per_hour", "一小时内同一 IP 新绑定超过", 1, 100000, "个"),
    ("threshold_window_hours", "达标后退款：付款后", 1, 24 * 90, "小时内达成任务或升级"),
)
SWITCHES = (
    ("shared_receiver_on", "买家与分销员收货信息相同"),
    ("shared_payer_on", "买家与分销员为同一微信付款人"),
    ("shared_device_on", "买家与分销员同一设备/网络登录"),
    ("receiver_ring_on", "多个买家共用同一收货信息"),
    ("refund_rate_on", "结算后退款率远高于全店"),
    ("binding_burst_on", "短时间内大量新绑定（含同一 IP）"),
    ("threshold_refund_on", "刚达任务/等级门槛后退款"),
)


@bp.get("/risk")
@staff_required
def risk_queue():
    """The review queue (待审核 by default)."""
    state = request.args.get("state", HOLD_HELD)
    if state not in dict(TABS):
        state = HOLD_HELD
    items = review.queue(state)
    ring_buyers = {
        uid for item in items for f in item.flags for uid in f.evidence.get("buyers", [])
    }
    return render_template(
        "admin/risk_queue.html",
        tabs=TABS,
        state=state,
        items=items,
        evidence={item.hold.id: review.side_by_side(item) for item in items},
        labels=SIGNAL_LABELS,
        open_count=review.open_count(),
        held_note=HELD_NOTE,
        names=review.names(ring_buyers),
    )


@bp.post("/risk/holds/<int:hold_id>")
@staff_required
def risk_decide(hold_id: int):
    """Release or reject one hold (audited by ``review.decide`` with the reason)."""
    db.get_or_404(LedgerHold, hold_id)
    if not ActionForm().validate():
        flash("页面已过期，请刷新后重试", "error")
        return redirect(url_for("admin.risk_queue"))
    decision = request.form.get("decision", "")
    try:
        review.decide(hold_id, decision, edge_actor(), request.form.get("note", ""))
    except review.ReviewError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(url_for("admin.risk_queue"))
    db.session.commit()
    flash(
        "已放行，佣金将按结算规则结算" if decision == review.RELEASE else "已驳回，佣金已冲回",
        "success",
    )
    return redirect(url_for("admin.risk_queue"))


@bp.get("/risk/people/<int:user_id>")
@staff_required
def risk_person(user_id: int):
    """A customer's or distributor's risk page: linked accounts, orders, refunds, bindings."""
    user = db.get_or_404(User, user_id)
    return render_template("admin/risk_person.html", p=person(user), labels=SIGNAL_LABELS)


@bp.get("/risk/settings")
@staff_required
def risk_settings():
    """Each signal on or off and its thresholds."""
    settings = get_risk_settings()
    db.session.commit()
    return _settings_page(settings, {})


def _settings_page(settings: RiskSettings, values: dict, error: str = "", status: int = 200):
    shown = {name: values.get(name, getattr(settings, name)) for name, *_ in THRESHOLDS}
    return (
        render_template(
            "admin/risk_settings.html",
            settings=settings,
            shown=shown,
            thresholds=THRESHOLDS,
            switches=SWITCHES,
            error=error,
        ),
        status,
    )


@bp.post("/risk/settings")
@staff_required
@audited("risk.settings", single(RiskSettings, "risk_settings"))
def risk_settings_save():
    """Save the switches and thresholds (whole numbers in range, else a Chinese error)."""
    settings = get_risk_settings()
    if not ActionForm().validate():
        db.session.rollback()
        return _settings_page(settings, {}, "页面已过期，请刷新后重试", 400)
    values: dict[str, int] = {}
    raw_values = {name: (request.form.get(name) or "").strip() for name, *_ in THRESHOLDS}
    for name, label, low, high, _hint in THRESHOLDS:
        raw = raw_values[name]
        if not (raw.isascii() and raw.isdecimal()) or len(raw) > 7 or not low <= int(raw) <= high:
            db.session.rollback()
            return _settings_page(
                get_risk_settings(), raw_values, f"“{label}”须为 {low}-{high} 的整数", 400
            )
        values[name] = int(raw)
    for name, value in values.items():
        setattr(settings, name, value)
    for name, _label in SWITCHES:
        setattr(settings, name, request.form.get(name) == "1")
    db.session.commit()
    flash("风控设置已保存", "success")
    return redirect(url_for("admin.risk_settings"))
