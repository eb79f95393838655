"""Admin pages of distribution money: the ledger (with CSV), withdrawal review, and the
product/SKU commission rule section of the product edit page.

The ledger CSV follows the order export's rules (app.admin.order_csv): UTF-8 with a BOM
for Excel, every cell through ``safe_cell`` so nothing typed by a person runs as a formula.
Withdrawal actions call app.distribution.withdrawals; a WeChat payout is started at once
on approval (the stand-in in development).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime

from flask import Response, flash, redirect, render_template, request, stream_with_context, url_for
from flask_login import current_user
from sqlalchemy import func, select

from app.admin import bp
from app.admin.decorators import staff_required
from app.admin.distribution import find_distributor
from app.admin.distribution_forms import bp_text, rule_from_form
from app.admin.order_csv import BOM, safe_cell
from app.catalog.models import Product
from app.core.audit import audited, row
from app.core.money import format_yuan
from app.core.params import bounded_int, page_arg
from app.core.replica import reads_replica
from app.core.status import InvalidTransition
from app.core.time import SHOP_TZ, shop_time_text
from app.distribution import (
    admin_distributors,
    admin_input,
    admin_labels,
    admin_money,
    admin_settings,
)
from app.distribution import withdrawals as wd
from app.distribution.audit_targets import RULES_OF_PRODUCT
from app.distribution.distributors import DistributionError
from app.distribution.models import Distributor, Withdrawal
from app.distribution.payout_cap import RateRefused
from app.extensions import db
from app.ledger.kinds import KIND_LABELS, LEDGER_KINDS, STATE_LABELS
from app.ledger.models import LedgerEntry
from app.orders.models import Order
from app.orders.search import parse_day
from app.payments.client import PaymentError

PER_PAGE = 30
CSV_BATCH = 500


def _actor() -> str:
    return current_user.get_id()  # "staff:<id>"


def _bj(value: datetime | None) -> str:
    return shop_time_text(value, "%Y-%m-%d %H:%M:%S")


# --- ledger -----------------------------------------------------------------------------


def _ledger_filter() -> tuple[admin_money.LedgerFilter, dict[str, str], str | None]:
    """The filter in the query string, the args to keep in links, and an error message."""
    args = {
        "distributor": (request.args.get("distributor") or "").strip()[:20],
        "kind": request.args.get("kind", ""),
        "state": request.args.get("state", ""),
        "from": (request.args.get("from") or "").strip()[:10],
        "to": (request.args.get("to") or "").strip()[:10],
        "order": str(bounded_int(request.args.get("order")) or ""),  # from the order page
    }
    error = None
    if args["kind"] not in LEDGER_KINDS:
        args["kind"] = ""
    if args["state"] not in STATE_LABELS:
        args["state"] = ""
    distributor_id = None
    if args["distributor"]:
        found = find_distributor(args["distributor"])
        if found is None:
            error = f"找不到分销员“{args['distributor']}”"
            distributor_id = -1  # nothing matches: an unknown distributor has no entries
        else:
            distributor_id = found.id
    days = {}
    for key, label in (("from", "开始日期"), ("to", "结束日期")):
        try:
            days[key] = parse_day(args[key])
        except ValueError as exc:
            days[key], args[key], error = None, "", f"{label}{exc}"
    if days["from"] and days["to"] and days["from"] > days["to"]:
        error = "开始日期不能晚于结束日期"
    flt = admin_money.LedgerFilter(
        distributor_id=distributor_id,
        kind=args["kind"] or None,
        state=args["state"] or None,
        created_from=days["from"],
        created_to=days["to"],
        order_id=int(args["order"]) if args["order"] else None,
    )
    return flt, {k: v for k, v in args.items() if v}, error


def _names(distributor_ids: set[int]) -> dict[int, Distributor]:
    if not distributor_ids:
        return {}
    return {
        d.id: d
        for d in db.session.scalars(select(Distributor).where(Distributor.id.in_(distributor_ids)))
    }


def _order_numbers(order_ids: set[int]) -> dict[int, str]:
    if not order_ids:
        return {}
    return dict(
        db.session.execute(select(Order.id, Order.number).where(Order.id.in_(order_ids))).all()
    )


@bp.get("/distribution/ledger")
@staff_required
def distribution_ledger():
    """Every ledger entry, filterable by distributor, kind, state and date; with totals."""
    flt, args, error = _ledger_filter()
    pagination = db.paginate(
        admin_money.ledger_query(flt), page=page_arg(), per_page=PER_PAGE, error_out=False
    )
    items = pagination.items
    return render_template(
        "admin/distribution/ledger.html",
        pagination=pagination,
        args=args,
        error=error,
        total_fen=admin_money.ledger_totals(flt),
        dists=_names({e.distributor_id for e in items}),
        numbers=_order_numbers({e.order_id for e in items if e.order_id}),
        kinds=KIND_LABELS,
        states=STATE_LABELS,
        label=admin_distributors.distributor_label,
    )


CSV_HEADER = [
    "明细编号",
    "时间",
    "分销员编号",
    "分销员",
    "推广码",
    "类型",
    "金额",
    "状态",
    "订单号",
    "规则",
    "说明",
    "结算时间",
    "提现单",
]


def ledger_csv_lines(flt: admin_money.LedgerFilter) -> Iterable[str]:
    """The filtered ledger as CSV text, piece by piece, starting with the BOM."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_HEADER)
    yield BOM + flush()
    query = admin_money.ledger_query(flt)
    ids = list(db.session.scalars(query.with_only_columns(LedgerEntry.id)))
    for start in range(0, len(ids), CSV_BATCH):
        chunk = ids[start : start + CSV_BATCH]
        entries = db.session.scalars(query.where(LedgerEntry.id.in_(chunk))).all()
        dists = _names({e.distributor_id for e in entries})
        numbers = _order_numbers({e.order_id for e in entries if e.order_id})
        for e in entries:
            d = dists.get(e.distributor_id)
            cells = [
                e.id,
                _bj(e.created_at),
                e.distributor_id,
                (d.user.nickname if d and d.user else ""),
                d.code if d else "",
                KIND_LABELS.get(e.kind, e.kind),
                format_yuan(e.amount_fen, symbol=False),
                STATE_LABELS.get(e.state, e.state),
                numbers.get(e.order_id, ""),
                e.rule_source,
                e.note,
                _bj(e.settled_at),
                e.withdrawal_id or "",
            ]
            writer.writerow([safe_cell(c) for c in cells])
        yield flush()
        db.session.expunge_all()  # a long export must not keep every row in the session


@bp.get("/distribution/ledger/export.csv")
@staff_required
@reads_replica
def distribution_ledger_export():
    """The ledger of the current filter as a CSV file Excel opens."""
    flt, _args, _error = _ledger_filter()
    stamp = datetime.now(SHOP_TZ).strftime("%Y%m%d-%H%M")
    return Response(
        stream_with_context(ledger_csv_lines(flt)),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f"attachment; filename=commission-ledger-{stamp}.csv",
            "Cache-Control": "no-store",
        },
    )


# --- withdrawals ------------------------------------------------------------------------

WITHDRAWAL_TABS = [
    ("", "全部"),
    (wd.REQUESTED, "待审核"),
    (wd.APPROVED, "打款中"),
    (wd.AWAITING_CONFIRM, "待确认收款"),
    (wd.PAID, "已到账"),
    (wd.REJECTED, "已拒绝"),
    (wd.FAILED, "失败退回"),
]


@bp.get("/distribution/withdrawals")
@staff_required
def distribution_withdrawals():
    """Withdrawals, those awaiting review first; approve, reject, mark paid by hand."""
    status = request.args.get("status", "")
    status = status if status in wd.WITHDRAWAL_TRANSITIONS else ""
    pagination = db.paginate(
        admin_money.withdrawal_query(status or None),
        page=page_arg(),
        per_page=PER_PAGE,
        error_out=False,
    )
    counts = dict.fromkeys(wd.WITHDRAWAL_TRANSITIONS, 0)
    counts.update(
        {
            s: int(n)
            for s, n in db.session.execute(
                select(Withdrawal.status, func.count(Withdrawal.id)).group_by(Withdrawal.status)
            )
        }
    )
    counts[""] = sum(counts.values())
    return render_template(
        "admin/distribution/withdrawals.html",
        pagination=pagination,
        status=status,
        tabs=WITHDRAWAL_TABS,
        counts=counts,
        dists=_names({w.distributor_id for w in pagination.items}),
        labels=wd.WITHDRAWAL_STATUS_LABELS,
        channels=admin_labels.PAYOUT_CHANNEL_LABELS,
        label=admin_distributors.distributor_label,
    )


def _withdrawal_action(withdrawal_id: int, action, done):
    w = db.get_or_404(Withdrawal, withdrawal_id)
    back = url_for("admin.distribution_withdrawals", status=request.form.get("status") or None)
    try:
        action(w)
    except InvalidTransition as exc:
        db.session.rollback()
        current = wd.WITHDRAWAL_STATUS_LABELS.get(exc.current, exc.current)
        flash(f"提现当前状态为“{current}”，不能进行此操作，请刷新后查看", "error")
        return redirect(back)
    except DistributionError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(back)
    except PaymentError as exc:
        # The withdrawal stays approved with WeChat's message in review_note: keep it so
        # staff see why; approving again retries with the same bill number.
        db.session.commit()
        flash(f"微信转账发起失败：{exc.message}（可稍后再次点击“重新打款”）", "error")
        return redirect(back)
    db.session.commit()
    flash(done(w), "success")
    return redirect(back)


@bp.post("/distribution/withdrawals/<int:withdrawal_id>/approve")
@staff_required
@audited("withdrawal.approve", row(Withdrawal, "withdrawal_id"))
def distribution_withdrawal_approve(withdrawal_id: int):
    """Approve: WeChat transfer started at once, or (manual channel) to be paid by hand."""

    def done(w: Withdrawal) -> str:
        if w.status == wd.AWAITING_CONFIRM:
            return f"已同意提现 {format_yuan(w.net_fen)}，等待分销员在微信确认收款"
        if w.status == wd.PAID:
            return f"已打款 {format_yuan(w.net_fen)}"
        return f"已同意提现 {format_yuan(w.net_fen)}，请线下打款后点击“标记已打款”"

    return _withdrawal_action(withdrawal_id, lambda w: wd.approve_withdrawal(w, _actor()), done)


@bp.post("/distribution/withdrawals/<int:withdrawal_id>/reject")
@staff_required
@audited("withdrawal.reject", row(Withdrawal, "withdrawal_id"))
def distribution_withdrawal_reject(withdrawal_id: int):
    """Refuse with a reason the distributor sees; the money returns to their balance."""
    reason = (request.form.get("reason") or "")[:200]
    return _withdrawal_action(
        withdrawal_id,
        lambda w: wd.reject_withdrawal(w, _actor(), reason),
        lambda w: f"已拒绝提现，{format_yuan(w.amount_fen)} 已退回分销员余额",
    )


@bp.post("/distribution/withdrawals/<int:withdrawal_id>/paid")
@staff_required
@audited("withdrawal.mark_paid", row(Withdrawal, "withdrawal_id"))
def distribution_withdrawal_paid(withdrawal_id: int):
    """An approved manual withdrawal was paid outside the system."""
    note = (request.form.get("note") or "")[:200]
    return _withdrawal_action(
        withdrawal_id,
        lambda w: wd.mark_paid_manually(w, _actor(), note),
        lambda w: f"已标记打款 {format_yuan(w.net_fen)}",
    )


@bp.post("/distribution/withdrawals/<int:withdrawal_id>/cancel")
@staff_required
@audited("withdrawal.cancel", row(Withdrawal, "withdrawal_id"))
def distribution_withdrawal_cancel(withdrawal_id: int):
    """Stop a WeChat payout the distributor has not confirmed; the money comes back."""
    return _withdrawal_action(
        withdrawal_id,
        lambda w: wd.cancel_transfer(w, _actor()),
        lambda w: f"提现状态：{wd.WITHDRAWAL_STATUS_LABELS.get(w.status, w.status)}",
    )


# --- product and SKU commission rules (a section of the product edit page) ---------------


@bp.context_processor
def commission_rule_helpers():
    """``commission_rule_rows(product)`` for the product page's commission section."""

    def commission_rule_rows(product: Product) -> dict:
        rules = {r.sku_id: r for r in admin_settings.rules_of(product.id)}

        def row(rule):
            if rule is None:
                return None
            show = bp_text if rule.mode == "percent" else (lambda v: format_yuan(v, symbol=False))
            return {
                "mode": rule.mode,
                "text": admin_settings.describe_rule(rule),
                "values": [show(rule.level1), show(rule.level2), show(rule.level3)],
            }

        return {
            "product": row(rules.get(None)),
            "skus": [(sku, row(rules.get(sku.id))) for sku in product.skus],
            "modes": admin_labels.MODE_LABELS,
        }

    return {"commission_rule_rows": commission_rule_rows}


@bp.post("/products/<int:product_id>/commission-rule")
@staff_required
@audited("commission_rule.save", RULES_OF_PRODUCT)
def product_commission_rule(product_id: int):
    """Save or remove the product's (or one SKU's) commission rule."""
    product = db.get_or_404(Product, product_id)
    back = url_for("admin.product_edit", product_id=product.id) + "#commission"
    raw_sku = (request.form.get("sku_id") or "").strip()
    sku_id = bounded_int(raw_sku) if raw_sku else None
    if raw_sku and sku_id is None:
        flash("SKU 不存在", "error")
        return redirect(back)
    what = "商品" if sku_id is None else "该 SKU 的"
    try:
        if request.form.get("action") == "delete":
            admin_settings.delete_commission_rule(product, sku_id)
            message = f"已删除{what}佣金规则，改用分销员等级或店铺默认比例"
        else:
            mode, values = rule_from_form(request.form)
            rule = admin_settings.save_commission_rule(
                product, sku_id, mode, values, owner=current_user.is_owner
            )
            message = f"{what}佣金规则已保存：{admin_settings.describe_rule(rule)}"
    except (admin_input.SettingsError, RateRefused) as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(back)
    db.session.commit()
    flash(message, "success")
    return redirect(back)
