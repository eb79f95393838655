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

A batch (``follow_up_orders``) takes the same steps order by order and leaves exactly
what one order at a time leaves, but set-based where it can: what stays put is read once
for the batch, team sales are counted at its start and added to the totals at its end
(grade checks read stored + the batch's running figure), the line earnings of every order
go to the ledger together at its end (``BatchLedger``), task evaluations are remembered
until a join, an upgrade or a binding moves them (``docs/architecture.md``, "A batch of
follow-ups").

The order's lines are locked first (a no-op UPDATE; in a batch, every order's lines
before the first order's follow-up), so two runs for one order, or a run and a completing
refund, go one after the other; every write is keyed, so running the
pipeline again writes nothing new. With distribution switched off, only team totals,
region dividends, incentives and the announcement run (as before the switch existed).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import bindparam, select, update

from app import signals
from app.cloud.dividends import dividend_agents, dividend_rows
from app.cloud.price_difference import price_difference_rows
from app.core.batch import batch_scope
from app.core.time import utcnow
from app.distribution.attribution import attribute_order, attribution_for, load_attributions
from app.distribution.binding import extend_protection, on_first_payment
from app.distribution.distributors import get_distribution_settings, load_distributors_of_users
from app.distribution.joining import join_by_threshold, load_paid_purchases
from app.distribution.levels import commission_rows, forget_grades
from app.distribution.rules import EarningRow
from app.distribution.team import (
    add_batch_sales,
    apply_batch_sales,
    count_batch_sales,
    count_order_sales,
)
from app.earnings.plan import earnings_plan, load_merchants_of_orders
from app.extensions import db
from app.incentives.events import (
    after_payment,
    load_affected_by_orders,
    mark_orders_for_leaderboards,
    progress_moved,
)
from app.incentives.grades import grades_with_conditions, upgrade_many
from app.ledger.entries import write_earnings, write_earnings_keyed
from app.ledger.kinds import LEVEL_KINDS, LINE_EARNING_KINDS, PENDING, REGION_DIVIDEND
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
    return write_earnings(lines, earning_values(order_id, lines, rows, now), now)


def earning_values(
    order_id: int, lines: list[OrderLine], rows: list[EarningRow], now: datetime
) -> list[dict]:
    """The ledger values of calculators' rows, line by line (each calculator's rows in
    the order given), pending."""
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
    return [value for line in lines for value in by_line.get(line.id, [])]


class BatchLedger:
    """A batch's line earnings, written at its end in one INSERT (``write_earnings_keyed``)
    instead of two per order. Nothing in the pipeline reads an order's line earnings
    back before the batch ends except the payout cap of its region dividends, which gets
    them here: the commissions already in the ledger (read once for the batch) plus
    those about to be written whose key (line, beneficiary, kind) is still free, the
    first of a key winning, as ``ON CONFLICT DO NOTHING`` does."""

    def __init__(self, order_ids: list[int]):
        self.values: list[dict] = []
        self._lines: dict[int, OrderLine] = {}
        self._keys: set[tuple[int, int, str]] = set()
        self._levels: dict[int, dict[int, list[tuple[str, int]]]] = {}
        if not order_ids:
            return
        for order_id, line_id, distributor_id, kind, fen in db.session.execute(
            _EARNINGS_OF_ORDERS, {"order_ids": order_ids}
        ):
            self._keys.add((line_id, distributor_id, kind))
            if kind in LEVEL_KINDS:
                self._levels.setdefault(order_id, {}).setdefault(line_id, []).append((kind, fen))

    def add(self, order_id: int, lines: list[OrderLine], rows: list[EarningRow], now: datetime):
        """Queue an order's calculator rows (its lines, for refunds already completed)."""
        for line in lines:
            self._lines.setdefault(line.id, line)
        for value in earning_values(order_id, lines, rows, now):
            self.values.append(value)
            key = (value["order_line_id"], value["distributor_id"], value["kind"])
            if key in self._keys:
                continue  # written before, or earlier in this batch: this row writes nothing
            self._keys.add(key)
            if value["kind"] in LEVEL_KINDS:
                levels = self._levels.setdefault(order_id, {})
                levels.setdefault(value["order_line_id"], []).append(
                    (value["kind"], value["amount_fen"])
                )

    def line_commissions_fen(self, order_id: int) -> dict[int, list[tuple[str, int]]]:
        """``line_commissions_fen`` as it will be once the batch's rows are written."""
        return self._levels.get(order_id, {})

    def write(self, now: datetime) -> dict[int, tuple[int, int]]:
        """Write every queued row; {order id: (entries, dividends) written now}."""
        counts: dict[int, tuple[int, int]] = {}
        lines = list(self._lines.values())
        for _id, order_id, kind in write_earnings_keyed(lines, self.values, now):
            entries, dividends = counts.get(order_id, (0, 0))
            if kind == REGION_DIVIDEND:
                dividends += 1
            else:
                entries += 1
            counts[order_id] = (entries, dividends)
        self.values, self._lines = [], {}
        return counts


_EARNINGS_OF_ORDERS = select(
    LedgerEntry.order_id,
    LedgerEntry.order_line_id,
    LedgerEntry.distributor_id,
    LedgerEntry.kind,
    LedgerEntry.amount_fen,
).where(
    LedgerEntry.order_id.in_(bindparam("order_ids", expanding=True)),
    LedgerEntry.kind.in_(LINE_EARNING_KINDS),
    LedgerEntry.order_line_id.is_not(None),
)


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
    order: Order,
    extend_protection_once: bool,
    lines: list[OrderLine] | None = None,
    *,
    in_batch: bool = False,
    team_batched: bool = False,
    ledger: BatchLedger | None = None,
) -> FollowUp:
    """Steps 1 to 4 for one order whose lines the caller locked (the announcement is the
    caller's); ``lines``: the order's lines as read after that lock, if the caller has them.
    ``in_batch``: the caller marks the batch's people for the leaderboards at its end;
    ``team_batched``: it counted the order's team sales (``team.count_batch_sales``);
    ``ledger``: the batch's earnings, written at its end (the counts then filled in)."""
    if order.paid_at is None:
        return FollowUp(order.id, skipped=True)
    settings = get_distribution_settings()
    now = utcnow()
    binds_now = settings.enabled and settings.bind_mode == "first_payment"

    # 1. Who sells it.
    if settings.enabled:
        if binds_now:
            # Bindings and attributions written now move task progress: the batch's
            # remembered task evaluations are forgotten.
            progress_moved(None)
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
        if ledger is not None:
            ledger.add(order.id, lines, rows, now)  # written at the batch's end
        else:
            entries += write_rows(order.id, lines, rows, now)
    # After the commissions on purpose: the payout cap trims dividends first, to what the
    # line's commissions (as written, also by an earlier run) leave.
    agents = dividend_agents(order)
    dividends: list[int] = []
    if agents:
        if ledger is not None:
            rows = dividend_rows(lines, agents, ledger.line_commissions_fen(order.id))
            ledger.add(order.id, lines, rows, now)
        else:
            rows = dividend_rows(lines, agents, line_commissions_fen(order.id))
            dividends = write_rows(order.id, lines, rows, now)

    # 4. What the sale moves. The team's running sales, before any upgrade reads them (a
    # batch counted every order's share at its start and adds them to the table at its
    # end; grade checks read stored + what the batch counted so far).
    if team_batched:
        add_batch_sales(order.id)
    else:
        count_order_sales(order.id)
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
    # A join moves its parent's task progress, an upgrade its distributor's eligibility.
    moved = list(upgraded) + ([joined.parent_id] if joined is not None else [])
    if moved:
        progress_moved(moved)
    if upgraded:
        forget_grades(upgraded)  # their rates change from the next order on
    # Tasks, invite rewards, leaderboards (app/incentives/events.py); a batch marks its
    # people for the leaderboards once at its end (unless bindings move order by order).
    after_payment(order, leaderboards=not in_batch or binds_now)
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
        # Team sales counted for the whole batch now (attributions locked in id order),
        # added to the totals at its end; not when step 1 may still write attributions.
        settings = get_distribution_settings()
        team_batched = not (settings.enabled and settings.bind_mode == "first_payment")
        if team_batched and paid:
            count_batch_sales(paid)
            # What stays put when no attribution is written: read for the whole batch.
            load_attributions(paid)
            load_merchants_of_orders(paid)
            load_affected_by_orders(paid)
        # The line earnings of the whole batch in one INSERT at its end (the leaderboard
        # marks, which read them, then come after; order by order when bindings move).
        ledger = BatchLedger(paid) if team_batched else None
        load_paid_purchases({orders[i].user_id for i in paid})
        # The buyers' distributor rows (the join and invite checks), one query.
        load_distributors_of_users({o.user_id for o in orders.values()})
        for order_id in order_ids:
            order = orders.get(order_id)
            if order is None:
                done.append(FollowUp(order_id, skipped=True))
                continue
            done.append(
                _follow_up(
                    order,
                    order_id in extend_protection,
                    lines.get(order_id),
                    in_batch=True,
                    team_batched=team_batched,
                    ledger=ledger,
                )
            )
        if ledger is not None:
            counts = ledger.write(utcnow())
            done = [
                replace(d, entries=counts[d.order_id][0], dividends=counts[d.order_id][1])
                if d.order_id in counts
                else d
                for d in done
            ]
        apply_batch_sales()  # the hot team-total rows locked from here to the commit
        mark_orders_for_leaderboards([orders[d.order_id] for d in done if not d.skipped])
    # A message per beneficiary and order, deduplicated per order, all in one go: reading
    # the sums after the whole batch gives the same figures (an order's earnings are its own).
    announce([d.order_id for d in done if not d.skipped])
    return done
