"""The paid-order pipeline: everything that follows a payment, top to bottom.

For each paid order, in this order (one transaction per call; it flushes, the job commits):

1. **Who sells it.** Bind-on-first-payment (the last ref binds now) and the attribution
   that mode left open; the protection extension, only when the caller holds the order's
   one-time claim (extending is the one step that is not idempotent).
2. **What it earns.** The precedence plan (``plan.earnings_plan``: commissions, 级差 or
   both) picks the calculators, each returning rows and writing nothing:
   ``cloud.price_difference.price_difference_rows`` (级差),
   ``distribution.levels.commission_rows`` (commission levels, payout cap applied),
   then ``cloud.dividends.dividend_rows`` (region dividends, trimmed to what the payout
   cap leaves after the line's commissions as written).
3. **The ledger.** Every row goes through ``write_earnings`` (the price differences and
   commissions of an order in one INSERT, then its dividends in another): once per (line,
   beneficiary, kind), refunds already completed on the line reversed right away.
4. **What the sale moves.** Team totals (``team.count_order_sales``, before any upgrade
   reads them), joining by threshold, grade upgrades (``incentives.grades``), then
   incentives (``incentives.events.after_payment``: tasks, invite rewards, leaderboards).
5. **The announcement.** ``signals.commissions_earned``, once per batch with every order
   id: the WeChat listener queues one message per beneficiary and order
   (``app/wechat/listeners.py``).

The order's lines are locked first (a no-op UPDATE; in a batch, every order's lines
before the first order's follow-up), so two runs for one order, or a run and a completing
refund, go one after the other; every write is keyed, so running the
pipeline again writes nothing new. With distribution switched off, only team totals,
region dividends, incentives and the announcement run (as before the switch existed).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update

from app import signals
from app.cloud.dividends import dividend_agents, dividend_rows
from app.cloud.price_difference import price_difference_rows
from app.core.batch import batch_scope
from app.core.time import utcnow
from app.distribution.attribution import attribute_order, attribution_for
from app.distribution.binding import extend_protection, on_first_payment
from app.distribution.distributors import get_distribution_settings
from app.distribution.joining import join_by_threshold
from app.distribution.levels import commission_rows
from app.distribution.rules import EarningRow
from app.distribution.team import count_order_sales
from app.earnings.plan import earnings_plan
from app.extensions import db
from app.incentives.events import after_payment
from app.incentives.grades import grades_with_conditions, upgrade_many
from app.ledger.entries import write_earnings
from app.ledger.kinds import LEVEL_KINDS, PENDING
from app.ledger.models import LedgerEntry
from app.orders.models import Order, OrderLine

# The statements every follow-up runs, built once with bound parameters (building and
# caching a statement costs more CPU than PostgreSQL spends running it).
_lines = OrderLine.__table__
_LOCK_LINES = (
    update(_lines)
    .where(_lines.c.order_id == bindparam("locked_order_id"))
    .values(refunded_fen=_lines.c.refunded_fen)
)
_LOCK_LINES_OF_ORDERS = (
    update(_lines)
    .where(_lines.c.order_id.in_(bindparam("locked_order_ids", expanding=True)))
    .values(refunded_fen=_lines.c.refunded_fen)
)
_LINES_OF_ORDERS = (
    select(OrderLine)
    .where(OrderLine.order_id.in_(bindparam("order_ids", expanding=True)))
    .order_by(OrderLine.id)
    .execution_options(populate_existing=True)
)
_LINES_OF_ORDER = (
    select(OrderLine)
    .where(OrderLine.order_id == bindparam("order_id"))
    .order_by(OrderLine.id)
    .execution_options(populate_existing=True)
)


@dataclass(frozen=True)
class FollowUp:
    """What the pipeline did for one order."""

    order_id: int
    skipped: bool  # unknown or unpaid order: nothing done
    entries: int = 0  # commission and price-difference entries written now
    dividends: int = 0  # region-dividend entries written now
    joined: bool = False  # the buyer became a distributor by threshold
    upgraded: tuple[int, ...] = ()  # distributors whose grade moved up


def lock_order_lines(order_id: int) -> None:
    """Serialise earnings bookkeeping on an order's lines until the transaction ends."""
    db.session.execute(_LOCK_LINES, {"locked_order_id": order_id})


def lines_of_order(order_id: int) -> list[OrderLine]:
    """The order's lines in order, as the database has them now."""
    return list(db.session.scalars(_LINES_OF_ORDER, {"order_id": order_id}))


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


def write_rows(
    order_id: int, lines: list[OrderLine], rows: list[EarningRow], now: datetime
) -> list[int]:
    """Write calculators' rows as pending ledger entries, each once, in one INSERT (line
    by line, each calculator's rows in the order given); the ids written now."""
    by_line: dict[int, list[dict]] = {}
    for row in rows:
        by_line.setdefault(row.order_line_id, []).append(
            {
                "distributor_id": row.distributor_id,
                "kind": row.kind,
                "amount_fen": row.amount_fen,
                "state": PENDING,
                "order_id": order_id,
                "order_line_id": row.order_line_id,
                "rule_source": row.rule_source,
                "note": row.note,
                "created_at": now,
            }
        )
    values = [value for line in lines for value in by_line.get(line.id, [])]
    return write_earnings(lines, values, now)


def follow_up_order(order: Order, *, extend_protection_once: bool = False) -> FollowUp:
    """Run the pipeline for one paid order (see the module docstring); flushes.

    ``extend_protection_once``: the caller holds this order's one-time claim on the
    protection extension. Safe to run again: nothing is written twice.
    """
    if order.paid_at is not None:
        lock_order_lines(order.id)
    done = _follow_up(order, extend_protection_once)
    if not done.skipped:
        announce([order.id])
    return done


def announce(order_ids: list[int]) -> None:
    """Step 5, once for a batch: ``signals.commissions_earned`` with every order id (the
    WeChat listener queues one message per beneficiary and order, in one INSERT)."""
    if order_ids:
        signals.commissions_earned.send(__name__, order_ids=order_ids)


def _follow_up(
    order: Order, extend_protection_once: bool, lines: list[OrderLine] | None = None
) -> FollowUp:
    """Steps 1 to 4 for one order whose lines the caller locked (the announcement is the
    caller's); ``lines``: the order's lines as read after that lock, if the caller has them."""
    if order.paid_at is None:
        return FollowUp(order.id, skipped=True)
    settings = get_distribution_settings()
    now = utcnow()

    # 1. Who sells it.
    if settings.enabled:
        if settings.bind_mode == "first_payment":
            on_first_payment(order.user_id)
            if not attribution_for(order.id):
                attribute_order(order)
        if extend_protection_once:
            extend_protection(order.user_id)

    # 2 and 3. What it earns, written to the ledger.
    if lines is None:
        lines = lines_of_order(order.id)
    entries: list[int] = []
    attribution = None  # read once, after step 1 settled it
    if settings.enabled:
        plan = earnings_plan(order)
        rows: list[EarningRow] = []
        if plan.price_differences and plan.merchant is not None:
            rows += price_difference_rows(lines, plan.merchant, plan.merchant_order)
        if plan.commissions:
            attribution = attribution_for(order.id)
            rows += commission_rows(lines, attribution)  # reads no ledger: one INSERT for both
        entries += write_rows(order.id, lines, rows, now)
    # After the commissions on purpose: the payout cap trims dividends first, to what the
    # line's commissions (as written, also by an earlier run) leave.
    agents = dividend_agents(order)
    dividends: list[int] = []
    if agents:
        rows = dividend_rows(lines, agents, line_commissions_fen(order.id))
        dividends = write_rows(order.id, lines, rows, now)

    # 4. What the sale moves.
    count_order_sales(order.id)  # the team's running sales, before any upgrade reads them
    joined = join_by_threshold(order.user_id) if settings.enabled else None
    upgraded: tuple[int, ...] = ()
    # Most shops set grades by hand: one EXISTS then saves three queries per beneficiary.
    if settings.enabled and grades_with_conditions():
        if attribution is None:
            attribution = attribution_for(order.id)
        candidates = [row.distributor_id for row in attribution]
        if joined is not None and joined.parent_id is not None:
            candidates.append(joined.parent_id)
        upgraded = upgrade_many(candidates, "付款后业绩达标")
    after_payment(order)  # tasks, invite rewards, leaderboards (app/incentives/events.py)
    db.session.flush()
    # 5. The announcement: the caller's, once per batch (``announce``).
    return FollowUp(order.id, False, len(entries), len(dividends), joined is not None, upgraded)


def follow_up_orders(
    order_ids: Iterable[int], *, extend_protection: Collection[int] = ()
) -> list[FollowUp]:
    """Run the pipeline for each of ``order_ids`` in this transaction, in the order
    given; one ``FollowUp`` each (unknown or unpaid orders come back ``skipped``).

    ``extend_protection``: the ids of the orders whose one-time protection claim the
    caller holds. Flushes; the caller commits.
    """
    done = []
    # What every order reads and none writes (settings, rules, grades, agents) is read
    # once for the batch (``app/core/batch.py``).
    order_ids = list(order_ids)
    with batch_scope():
        # One read for the batch's orders; the list keeps them in the identity map.
        orders = {o.id: o for o in db.session.scalars(select(Order).where(Order.id.in_(order_ids)))}
        # Every order's lines locked before any team total is touched: a job following up
        # one of these orders alone then waits for the batch, or the batch for it, but
        # never each for the other (the batch holding the top's totals from an earlier
        # order while waiting for lines the lone job holds, the job waiting for the totals).
        # One UPDATE locks them all, one SELECT reads them as they are now (the pipeline
        # writes no line, so they stay as read until the commit).
        paid = [i for i in order_ids if i in orders and orders[i].paid_at is not None]
        lines: dict[int, list[OrderLine]] = {i: [] for i in paid}
        if paid:
            db.session.execute(_LOCK_LINES_OF_ORDERS, {"locked_order_ids": paid})
            for line in db.session.scalars(_LINES_OF_ORDERS, {"order_ids": paid}):
                lines[line.order_id].append(line)
        for order_id in order_ids:
            order = orders.get(order_id)
            if order is None:
                done.append(FollowUp(order_id, skipped=True))
                continue
            done.append(_follow_up(order, order_id in extend_protection, lines.get(order_id)))
    # A message per beneficiary and order, deduplicated per order, all in one go: reading
    # the sums after the whole batch gives the same figures (an order's earnings are its own).
    announce([d.order_id for d in done if not d.skipped])
    return done
