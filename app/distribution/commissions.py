"""The commission engine: earnings on payment.

Services flush; the job (jobs/commissions.py) or the refund's edge commits.

Earnings. When an order is paid, every attributed beneficiary (app/distribution/
attribution.py) gets one ``pending`` entry per order line and level (kind ``level_1/2/3``),
computed by ``rules.line_shares`` on what the customer paid for the line
(``line.amount_fen``, after discounts, without shipping). Rates: SKU rule, then product
rule, then the beneficiary's grade, then the shop default. The entries are inserted with
``INSERT ... ON CONFLICT DO NOTHING`` on the unique (order_line_id, distributor_id, kind)
key, so a job run twice, or two workers at once, write each commission exactly once.

Refunds. Refunds that completed before the earnings were written are applied right after
writing them, by the same reversal code as a refund that completes later, so the result
never depends on which came first. A line refunded in full before payment follow-up earns
nothing at all.

The entries are written and reversed by app/ledger/entries.py (the reversal rule is
written down there).

Concurrency. The earning job locks the order's lines first (a no-op UPDATE: row locks on
PostgreSQL, the write lock on SQLite) and a completing refund holds its line's lock from
its own UPDATE, so for one line they run one after the other and each sees what the other
committed.

Settlement: app/ledger/settlement.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.exc import IntegrityError

from app.core.time import utcnow
from app.distribution.attribution import attribute_order, attribution_for
from app.distribution.binding import current_binding, extend_protection, on_first_payment
from app.distribution.distributors import (
    create_distributor,
    distributor_for_user,
    get_distribution_settings,
)
from app.distribution.models import CommissionRule, Distributor, Grade, OrderAttribution
from app.distribution.payout_cap import trim_to_cap, with_trim_note
from app.distribution.rules import PERCENT, Beneficiary, Rule, line_shares
from app.distribution.team import SALES_STATUSES, count_order_sales, team_sales_fen
from app.extensions import db
from app.ledger.entries import write_line_earnings
from app.ledger.kinds import LEVEL_KINDS, PENDING
from app.ledger.models import LedgerEntry
from app.orders.models import (
    Order,
    OrderLine,
)

# The statements every commission job runs, built once with bound parameters (building
# and caching a statement costs more CPU than PostgreSQL spends running it).
_lines = OrderLine.__table__
_LOCK_LINES = (
    update(_lines)
    .where(_lines.c.order_id == bindparam("locked_order_id"))
    .values(refunded_fen=_lines.c.refunded_fen)
)
_LINES_OF_ORDER = (
    select(OrderLine)
    .where(OrderLine.order_id == bindparam("order_id"))
    .order_by(OrderLine.id)
    .execution_options(populate_existing=True)
)
_RULES_OF_PRODUCT = select(CommissionRule).where(
    CommissionRule.product_id == bindparam("product_id")
)
_GRADES_OF = (
    select(Distributor.id, Grade)
    .outerjoin(Grade, Grade.id == Distributor.grade_id)
    .where(Distributor.id.in_(bindparam("ids", expanding=True)))
)
_ANY_GRADE_CONDITION = select(
    exists().where((Grade.upgrade_team_sales_fen > 0) | (Grade.upgrade_direct_count > 0))
)


def line_commissions_fen(order_id: int) -> dict[int, list[tuple[str, int]]]:
    """{line id: [(level kind, fen)]} of the commissions written on an order (before any
    reversal): what the region dividends may add to under the payout cap."""
    rows = db.session.execute(
        select(LedgerEntry.order_line_id, LedgerEntry.kind, LedgerEntry.amount_fen).where(
            LedgerEntry.order_id == order_id,
            LedgerEntry.kind.in_(LEVEL_KINDS),
            LedgerEntry.order_line_id.is_not(None),
        )
    ).all()
    out: dict[int, list[tuple[str, int]]] = {}
    for line_id, kind, amount in rows:
        out.setdefault(line_id, []).append((kind, amount))
    return out


def lines_of_order(order_id: int) -> list[OrderLine]:
    """The order's lines in order, as the database has them now."""
    return list(db.session.scalars(_LINES_OF_ORDER, {"order_id": order_id}))


def lock_order_lines(order_id: int) -> None:
    """Serialise commission bookkeeping on an order's lines until the transaction ends."""
    db.session.execute(_LOCK_LINES, {"locked_order_id": order_id})


# --- rules from the database ----------------------------------------------------------------


def default_rule() -> Rule:
    """The shop default rates (settings), as a rule."""
    s = get_distribution_settings()
    return Rule(PERCENT, (s.level1_bp, s.level2_bp, s.level3_bp), "店铺默认")


def grade_rule(grade: Grade | None) -> Rule | None:
    """A grade's rates as a rule (None for no grade)."""
    if grade is None:
        return None
    return Rule(PERCENT, (grade.level1_bp, grade.level2_bp, grade.level3_bp), f"等级 {grade.name}")


def product_rules(product_id: int | None, sku_id: int | None) -> tuple[Rule | None, Rule | None]:
    """(SKU rule, product rule) set for a line's product and SKU."""
    if product_id is None:
        return None, None
    sku_rule = product_rule = None
    for row in db.session.scalars(_RULES_OF_PRODUCT, {"product_id": product_id}):
        values = (row.level1, row.level2, row.level3)
        if row.sku_id is None:
            product_rule = Rule(row.mode, values, "商品规则")
        elif row.sku_id == sku_id:
            sku_rule = Rule(row.mode, values, "SKU 规则")
    return sku_rule, product_rule


def beneficiaries(rows: list[OrderAttribution]) -> list[Beneficiary]:
    """The attributed distributors with the rates of their grade today (one query)."""
    grades = dict(
        db.session.execute(_GRADES_OF, {"ids": [row.distributor_id for row in rows]}).all()
    )
    return [
        Beneficiary(row.level, row.distributor_id, grade_rule(grades.get(row.distributor_id)))
        for row in rows
    ]


def grades_with_conditions() -> bool:
    """Whether any grade can be reached automatically (else upgrade checks are moot)."""
    return db.session.scalar(_ANY_GRADE_CONDITION)


# --- earnings -------------------------------------------------------------------------------


def write_earnings(order: Order, *, lines_locked: bool = False) -> list[int]:
    """Write the order's pending commission entries once; return the ids written now.

    The caller has the order paid. Lines refunded in full earn nothing; refunds already
    completed on a line are applied as reversals right away (see the module docstring).
    An order through an ordering merchant may earn price differences instead of (or as
    well as) commissions: ``earnings_plan`` is the one place that decides.
    ``lines_locked``: the caller locked the order's lines in this transaction already.
    """
    from app.cloud.price_difference import earnings_plan, write_price_differences

    plan = earnings_plan(order)
    written: list[int] = write_price_differences(order, plan)
    rows = attribution_for(order.id) if plan.commissions else []
    if not rows:
        return written
    if not lines_locked:
        lock_order_lines(order.id)
    settings = get_distribution_settings()
    chain = beneficiaries(rows)
    default = default_rule()
    lines = lines_of_order(order.id)
    now = utcnow()
    for line in lines:
        if line.amount_fen - line.refunded_fen <= 0:
            continue
        sku_rule, product_rule = product_rules(line.product_id, line.sku_id)
        shares = line_shares(
            paid_fen=line.amount_fen,
            quantity=line.quantity,
            chain=chain,
            levels=settings.levels,
            default_rule=default,
            product_rule=product_rule,
            sku_rule=sku_rule,
        )
        if not shares:
            continue
        # The payout cap, again (rules saved before it existed): level 3 gives way first.
        kept = trim_to_cap(
            line.amount_fen,
            settings.payout_cap_bp,
            [(f"level_{share.level}", share.amount_fen) for share in shares],
        )
        values = [
            {
                "distributor_id": share.distributor_id,
                "kind": f"level_{share.level}",
                "amount_fen": amount,
                "state": PENDING,
                "order_id": order.id,
                "order_line_id": line.id,
                "rule_source": share.source[:64],
                "note": (
                    share.explanation[:200]
                    if amount == share.amount_fen
                    else with_trim_note(
                        share.explanation, settings.payout_cap_bp, share.amount_fen - amount
                    )
                ),
                "created_at": now,
            }
            for share, amount in zip(shares, kept, strict=True)
            if amount > 0  # trimmed to nothing: that level earns nothing on this line
        ]
        if values:
            written += write_line_earnings(line, values, now)
    db.session.flush()
    return written


# --- what follows a payment ----------------------------------------------------------------


@dataclass(frozen=True)
class PaymentFollowUp:
    """What the commission job did for one paid order."""

    entries: int
    joined: bool
    upgraded: tuple[int, ...]


def paid_purchases_fen(user_id: int) -> int:
    """What the customer has paid for goods on paid, shipped or completed orders, net of refunds."""
    total = db.session.scalar(
        select(func.coalesce(func.sum(Order.paid_fen - Order.refunded_fen), 0)).where(
            Order.user_id == user_id, Order.status.in_(SALES_STATUSES)
        )
    )
    return int(total or 0)


def join_by_threshold(user_id: int) -> Distributor | None:
    """Threshold join mode: make the customer a distributor once their paid purchases
    reach ``join_threshold_fen`` (never a fee: only real, unrefunded purchases count).

    They join under the distributor they are bound to (if active). Returns the new
    distributor, or None when nothing changed (already one, below the threshold, another
    mode, or a concurrent job made them one first).
    """
    settings = get_distribution_settings()
    if settings.join_mode != "threshold" or distributor_for_user(user_id) is not None:
        return None
    if paid_purchases_fen(user_id) < settings.join_threshold_fen:
        return None
    binding = current_binding(user_id)
    parent = None
    if binding is not None:
        candidate = db.session.get(Distributor, binding.distributor_id)
        parent = candidate if candidate is not None and candidate.status == "active" else None
    try:
        with db.session.begin_nested():
            return create_distributor(user_id, parent)
    except IntegrityError:  # another job of the same customer got there first
        return None


def upgrade_grade(distributor_id: int) -> Grade | None:
    """Move a distributor up to the best grade whose condition they meet; never down.

    A grade's condition is every threshold it sets (team sales per ``team.py``, active
    direct sub-distributors); a grade with neither is assigned by staff only. The UPDATE
    is conditional on the current grade ranking lower, so concurrent jobs never lower it.
    """
    grades = db.session.scalars(
        select(Grade)
        .where((Grade.upgrade_team_sales_fen > 0) | (Grade.upgrade_direct_count > 0))
        .order_by(Grade.rank.desc())
    ).all()
    distributor = db.session.get(Distributor, distributor_id)
    if not grades or distributor is None or distributor.status != "active":
        return None
    current_rank = distributor.grade.rank if distributor.grade is not None else None
    candidates = [g for g in grades if current_rank is None or g.rank > current_rank]
    if not candidates:
        return None
    sales = team_sales_fen(distributor_id)
    direct = db.session.scalar(
        select(func.count())
        .select_from(Distributor)
        .where(Distributor.parent_id == distributor_id, Distributor.status == "active")
    )
    for grade in candidates:
        if grade.upgrade_team_sales_fen and sales < grade.upgrade_team_sales_fen:
            continue
        if grade.upgrade_direct_count and direct < grade.upgrade_direct_count:
            continue
        lower = select(Grade.id).where(Grade.rank < grade.rank)
        moved = db.session.execute(
            update(Distributor)
            .where(
                Distributor.id == distributor_id,
                Distributor.grade_id.is_(None) | Distributor.grade_id.in_(lower),
            )
            .values(grade_id=grade.id)
            .execution_options(synchronize_session=False)
        )
        db.session.refresh(distributor)
        return grade if moved.rowcount == 1 else None
    return None


def follow_up_payment(order: Order, *, extend_protection_once: bool = True) -> PaymentFollowUp:
    """Everything distribution does when ``order`` is paid; safe to run again (flushes).

    In order: bind-on-first-payment, attribution taken now if that mode left the order
    without one, the protection extension (only when the caller holds this order's
    one-time claim: extending is not idempotent), the commission entries, joining by
    threshold and grade upgrades. The order's lines are locked first, so two runs for
    the same order go one after the other.
    """
    settings = get_distribution_settings()
    if order.paid_at is None:
        return PaymentFollowUp(0, False, ())
    if not settings.enabled:
        count_order_sales(order.id)  # team sales count whatever the switch (team.py)
        return PaymentFollowUp(0, False, ())
    lock_order_lines(order.id)
    if settings.bind_mode == "first_payment":
        on_first_payment(order.user_id)
        if not attribution_for(order.id):
            attribute_order(order)
    if extend_protection_once:
        extend_protection(order.user_id)
    written = write_earnings(order, lines_locked=True)
    count_order_sales(order.id)  # the team's running sales, before any upgrade reads them
    joined = join_by_threshold(order.user_id)
    upgraded: tuple[int, ...] = ()
    # Most shops set grades by hand: one EXISTS then saves three queries per beneficiary.
    if grades_with_conditions():
        candidates = [row.distributor_id for row in attribution_for(order.id)]
        if joined is not None and joined.parent_id is not None:
            candidates.append(joined.parent_id)
        from app.incentives.grades import upgrade_many  # upgrade_grade + history + notice

        upgraded = upgrade_many(candidates, "付款后业绩达标")
    db.session.flush()
    return PaymentFollowUp(len(written), joined is not None, upgraded)
