"""Admin page of the commission simulator (app.earnings.simulator).

A GET form: SKU, quantity, buyer or chain, and optionally rules not yet saved. The
result is computed on the same request and the session rolled back, so nothing is ever
written, whatever the input.
"""

from __future__ import annotations

from flask import render_template, request
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.admin import bp
from app.admin.decorators import staff_required
from app.admin.distribution_forms import bp_text, parse_fen, parse_int, parse_percent
from app.admin.people import agent_names, people_by_merchant
from app.catalog.models import Product, Sku
from app.core.money import format_yuan
from app.core.params import MAX_ID
from app.coupons.models import CouponTemplate
from app.coupons.services import rule_text, template_shares
from app.distribution.admin_input import SettingsError
from app.distribution.admin_labels import MODE_LABELS
from app.distribution.distributors import DistributionError, get_distribution_settings
from app.earnings.simulator import Preview, simulate
from app.extensions import db

MAX_SKU_CHOICES = 300


def _preview(args) -> Preview:
    """Unsaved rules from the form; empty boxes keep the saved values."""
    levels = parse_int(args["levels"], "levels", "分销层级") if args.get("levels") else None
    default_bp = None
    if any(args.get(f"default{n}") for n in (1, 2, 3)):
        default_bp = tuple(
            parse_percent(args.get(f"default{n}") or "0", f"default{n}", f"预览{n}级比例")
            for n in (1, 2, 3)
        )
    self_purchase = {"on": True, "off": False}.get(args.get("self_purchase", ""))
    mode = args.get("rule_mode") or None
    values = (0, 0, 0)
    if mode is not None:
        if mode not in MODE_LABELS:
            raise SettingsError("rule_mode", "invalid_choice", "请选择分佣方式")
        read = parse_percent if mode == "percent" else parse_fen
        if mode != "none":
            values = tuple(
                read(args.get(f"rule{n}") or "0", f"rule{n}", f"预览规则{n}级") for n in (1, 2, 3)
            )
    return Preview(
        levels=levels,
        self_purchase=self_purchase,
        default_bp=default_bp,
        rule_mode=mode,
        rule_values=values,
        rule_for_sku=args.get("rule_scope") == "sku",
    )


def _paid_with_coupon(raw: str, sku_id: int, quantity: int) -> tuple[int | None, str]:
    """What a one-line order of ``quantity`` × the SKU pays with coupon template ``raw``
    (the order's only line takes the whole discount), and a note saying so."""
    coupon_id = parse_int(raw, "coupon_id", "优惠券")
    t = db.session.get(CouponTemplate, coupon_id) if coupon_id <= MAX_ID else None
    sku = db.session.get(Sku, sku_id) if sku_id <= MAX_ID else None
    if t is None or sku is None:
        raise SettingsError("coupon_id", "not_found", "优惠券或商品不存在")
    goods = sku.price_fen * quantity
    shares = template_shares(t, [(0, goods, sku.product_id, sku.product.category_id)])
    if not shares:
        return None, f"优惠券“{t.name}”（{rule_text(t)}）不适用于本单，按原价计算"
    off = shares[0]
    return (
        goods - off,
        f"使用优惠券“{t.name}”（{rule_text(t)}）：{format_yuan(goods)} − {format_yuan(off)}",
    )


def _chain(text: str) -> list[int]:
    parts = [p for p in text.replace("，", ",").replace(" ", ",").split(",") if p]
    if not parts or not all(p.isdecimal() and len(p) < 10 for p in parts):
        raise SettingsError("chain", "invalid_chain", "分销员链条请填写编号，用逗号分隔，如 12,5,3")
    return [int(p) for p in parts]


def _merchant_names(result) -> dict[int, str]:
    rows = result.price_differences.rows if result and result.price_differences else []
    found = people_by_merchant(r.merchant_id for r in rows)
    return {mid: p.label() for mid, p in found.items()}


def _agent_names(result) -> dict[int, str]:
    shares = result.region_dividends.shares if result and result.region_dividends else []
    return agent_names(s.agent.id for s in shares)


@bp.get("/distribution/simulator")
@staff_required
def distribution_simulator():
    """Choose SKU, quantity, buyer or chain, optionally the shipping district (and rules
    to preview) → commissions per level, 级差, and the district's region dividends."""
    args = request.args
    result, error, status = None, None, 200
    coupon_note = ""
    if args.get("sku_id"):
        try:
            sku_id = parse_int(args["sku_id"], "sku_id", "SKU")
            quantity = parse_int(args.get("quantity") or "1", "quantity", "数量")
            paid = args.get("paid")
            paid_fen = parse_fen(paid, "paid", "实付金额") if paid else None
            coupon_note = ""
            if args.get("coupon_id") and paid_fen is None:
                paid_fen, coupon_note = _paid_with_coupon(args["coupon_id"], sku_id, quantity)
            who = args.get("who", "buyer")
            buyer_id = chain = None
            if who == "chain":
                picked = [args.get(f"chain{n}", "").strip() for n in (1, 2, 3)]
                picked = [p for p in picked if p]
                chain = _chain(",".join(picked) if picked else args.get("chain", ""))
            else:
                buyer_id = parse_int(args.get("buyer_id", ""), "buyer_id", "买家编号")
            result = simulate(
                sku_id,
                quantity,
                buyer_id=buyer_id,
                chain=chain,
                paid_fen=paid_fen,
                preview=_preview(args),
                district_code=(args.get("district_code") or "").strip()[:12] or None,
            )
        except DistributionError as exc:
            error, status = exc.message, exc.status
    settings = get_distribution_settings()
    skus = db.session.scalars(
        select(Sku)
        .join(Sku.product)
        .options(joinedload(Sku.product))
        .order_by(Product.id.desc(), Sku.id)
        .limit(MAX_SKU_CHOICES)
    ).all()
    page = render_template(
        "admin/distribution/simulator.html",
        coupon_note=coupon_note,
        coupons=db.session.scalars(
            select(CouponTemplate).order_by(CouponTemplate.id.desc()).limit(100)
        ).all(),
        args=args,
        result=result,
        error=error,
        skus=skus,
        settings=settings,
        default_text=[
            bp_text(settings.level1_bp),
            bp_text(settings.level2_bp),
            bp_text(settings.level3_bp),
        ],
        modes=MODE_LABELS,
        merchant_names=_merchant_names(result),
        agent_names=_agent_names(result),
    )
    db.session.rollback()  # a simulation never leaves anything behind
    return page, status
