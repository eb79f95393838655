"""A distributor's team, read from the closure table (``distributor_paths``).

Definitions (kept simple, and the same for the centre, the admin and grade upgrades):

- **level 1 / level 2 members**: distributors exactly 1 or 2 steps below (any status);
- **team size**: every distributor below, at any depth;
- **team sales**: what customers paid for goods (``items_fen - refunded_fen``, shipping
  left out) on orders that are paid, shipped or completed and whose level-1 attribution
  is the distributor themself or anyone in their team. The attribution is fixed when the
  order is placed, so later rebinding never moves past sales.

Counts are one indexed query whatever the size of the team: the closure table has a row
per (ancestor, descendant), so "everyone below X" is a range of its primary key.

Team sales are a running total (``distributor_team_totals``), because summing every order
of a 100k-strong team takes longer than a page can wait. Each level-1 attribution keeps
what its order counts now (``order_attributions.team_sales_fen``); whenever something
that definition reads changes (the commission job after a payment, a completed refund,
the cancellation of a fully refunded order), ``count_order_sales`` locks that row,
recomputes the order's share and adds only the difference to the totals of the seller
and everyone above, with ``total = total + delta`` upserts in ancestor order. So it is
idempotent (a repeat finds no difference), safe under concurrent jobs, and the result
does not depend on whether a refund lands before or after the commission job. Moving a
branch (``set_parent``) moves its total with it. ``rebuild_team_totals`` recomputes
everything from the orders (``flask --app wsgi distribution rebuild-team-totals``);
``recount_team_sales_fen`` is the definition above as one query, for checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import (
    BigInteger,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    update,
)

from app.core.batch import in_batch, memo, memo_set
from app.core.sql import dialect_insert
from app.distribution.models import DistributorPath, DistributorTeamTotal, OrderAttribution
from app.extensions import db
from app.orders.models import COMPLETED, PAID, SHIPPED, Order

SALES_STATUSES = (PAID, SHIPPED, COMPLETED)


@dataclass(frozen=True)
class TeamStats:
    """Counts and sales of a distributor's team (money in fen)."""

    level1_count: int
    level2_count: int
    team_size: int
    team_sales_fen: int


def team_counts(distributor_id: int) -> tuple[int, int, int]:
    """(level-1 members, level-2 members, everyone below) in one query."""
    depth = DistributorPath.depth
    level1, level2, total = db.session.execute(
        select(
            func.coalesce(func.sum(case((depth == 1, 1), else_=0)), 0),
            func.coalesce(func.sum(case((depth == 2, 1), else_=0)), 0),
            func.count(),
        ).where(DistributorPath.ancestor_id == distributor_id, depth >= 1)
    ).one()
    return int(level1), int(level2), int(total)


def order_sales_fen():
    """What an order counts in team sales now (a SQL expression over ``orders``)."""
    return case((Order.status.in_(SALES_STATUSES), Order.items_fen - Order.refunded_fen), else_=0)


def recount_team_sales_fen(distributor_id: int) -> int:
    """Team sales summed from the orders themselves (slow for big teams: checks, rebuild)."""
    sold = db.session.scalar(
        select(func.coalesce(func.sum(Order.items_fen - Order.refunded_fen), 0))
        .select_from(DistributorPath)
        .join(
            OrderAttribution,
            (OrderAttribution.distributor_id == DistributorPath.descendant_id)
            & (OrderAttribution.level == 1),
        )
        .join(Order, Order.id == OrderAttribution.order_id)
        .where(DistributorPath.ancestor_id == distributor_id, Order.status.in_(SALES_STATUSES))
    )
    return int(sold or 0)


def team_sales_fen(distributor_id: int) -> int:
    """Goods paid for (less refunds) on orders sold by the distributor or their team."""
    if memo(_BATCH, lambda: None) is not None:
        return team_sales_of([distributor_id])[distributor_id]
    total = db.session.scalar(
        select(DistributorTeamTotal.team_sales_fen).where(
            DistributorTeamTotal.distributor_id == distributor_id
        )
    )
    return int(total or 0)


def team_sales_of(distributor_ids) -> dict[int, int]:
    """``team_sales_fen`` of many distributors in one query: {id: fen}, 0 where none."""
    ids = list(distributor_ids)
    if not ids:
        return {}
    batch = memo(_BATCH, lambda: None)
    if batch is not None:  # stored (read once in the batch) + what the batch counted so far
        unread = [i for i in ids if i not in batch.stored]
        if unread:
            batch.stored.update(_stored_totals(unread))
        return {i: batch.stored[i] + batch.running.get(i, 0) for i in ids}
    return _stored_totals(ids)


def _stored_totals(ids: list[int]) -> dict[int, int]:
    found = dict(
        db.session.execute(
            select(DistributorTeamTotal.distributor_id, DistributorTeamTotal.team_sales_fen).where(
                DistributorTeamTotal.distributor_id.in_(ids)
            )
        ).all()
    )
    return {i: int(found.get(i) or 0) for i in ids}


# --- a batch of paid-order follow-ups: counted once, added to the totals once -----------------

_BATCH = "team:batch"  # batch memo: the batch's counted sales (``_BatchSales``)


@dataclass
class _BatchSales:
    """What a batch counted: per order (seller, delta) still to reach the running figures,
    the sellers' chains, the running figures (``running``: not in the table yet), the
    stored totals read so far, and the sum per seller still to add to the table."""

    pending: dict[int, tuple[int, int]]
    chains: dict[int, list[int]]
    running: dict[int, int] = field(default_factory=dict)
    stored: dict[int, int] = field(default_factory=dict)
    per_seller: dict[int, int] = field(default_factory=dict)


_LOCK_SOLD_BY_ORDERS = (
    select(
        OrderAttribution.id,
        OrderAttribution.order_id,
        OrderAttribution.distributor_id,
        OrderAttribution.team_sales_fen,
    )
    .where(
        OrderAttribution.order_id.in_(bindparam("order_ids", expanding=True)),
        OrderAttribution.level == 1,
    )
    .order_by(OrderAttribution.id)
    .with_for_update()
)
# Each locked row's share recounted from its order (the old share was read with the lock).
_RECOUNT_ORDERS = (
    update(OrderAttribution)
    .where(OrderAttribution.id.in_(bindparam("attribution_ids", expanding=True)))
    .values(
        team_sales_fen=select(order_sales_fen())
        .where(Order.id == OrderAttribution.order_id)
        .scalar_subquery()
    )
    .returning(OrderAttribution.id, OrderAttribution.team_sales_fen)
    .execution_options(synchronize_session=False)
)
_CHAINS = (
    select(DistributorPath.descendant_id, DistributorPath.ancestor_id)
    .where(DistributorPath.descendant_id.in_(bindparam("seller_ids", expanding=True)))
    .order_by(DistributorPath.descendant_id, DistributorPath.ancestor_id)
)
_HOLD_CHAINS = text(
    "SELECT id FROM distributors WHERE id IN "
    "(SELECT ancestor_id FROM distributor_paths WHERE descendant_id IN :seller_ids) "
    "ORDER BY id FOR KEY SHARE"
).bindparams(bindparam("seller_ids", expanding=True))


def count_batch_sales(order_ids: list[int]) -> None:
    """Inside a ``batch_scope`` (the paid-order pipeline over a batch): lock the orders'
    level-1 attributions (in id order) and bring their shares up to date now, keeping
    each order's difference for ``add_batch_sales``; ``apply_batch_sales`` adds them to
    the table at the batch's end. ``count_order_sales`` order by order, in 3 statements
    per batch (and 2 at its end) instead of 4 per order. For orders that get no
    attribution during the batch (the caller's business: a binding on first payment
    writes them)."""
    if not in_batch():
        raise RuntimeError("count_batch_sales runs inside a batch_scope")
    rows = db.session.execute(_LOCK_SOLD_BY_ORDERS, {"order_ids": order_ids}).all()
    pending: dict[int, tuple[int, int]] = {}
    chains: dict[int, list[int]] = {}
    if rows:
        ids = [row.id for row in rows]
        after = dict(db.session.execute(_RECOUNT_ORDERS, {"attribution_ids": ids}).all())
        for row in rows:
            delta = int(after[row.id]) - int(row.team_sales_fen)
            if delta:
                pending[row.order_id] = (row.distributor_id, delta)
        sellers = sorted({seller for seller, _ in pending.values()})
        if sellers:
            for seller, ancestor in db.session.execute(_CHAINS, {"seller_ids": sellers}):
                chains.setdefault(seller, []).append(ancestor)
    memo_set(_BATCH, _BatchSales(pending, chains))


def add_batch_sales(order_id: int) -> int:
    """``count_order_sales`` for an order of the batch: its difference (counted by
    ``count_batch_sales``) now counts in ``team_sales_of`` for the seller and everyone
    above; the table gets it at ``apply_batch_sales``. Returns the difference."""
    batch: _BatchSales = memo(_BATCH, lambda: None)
    seller, delta = batch.pending.pop(order_id, (None, 0))
    if not delta:
        return 0
    for ancestor in batch.chains.get(seller, ()):
        batch.running[ancestor] = batch.running.get(ancestor, 0) + delta
    batch.per_seller[seller] = batch.per_seller.get(seller, 0) + delta
    return delta


def apply_batch_sales() -> None:
    """The batch's end: add what it counted to the running totals of each seller and
    everyone above, one upsert in ancestor order (the chains read again after holding
    them, as ``count_order_sales`` does); the lock on the hot rows lasts from here to
    the commit only."""
    batch: _BatchSales | None = memo(_BATCH, lambda: None)
    if batch is None:
        return
    memo_set(_BATCH, None)
    sellers = sorted(s for s, delta in batch.per_seller.items() if delta)
    if not sellers:
        return
    if db.engine.dialect.name == "postgresql":
        db.session.execute(_HOLD_CHAINS, {"seller_ids": sellers})
    sums: dict[int, int] = {}
    for seller, ancestor in db.session.execute(_CHAINS, {"seller_ids": sellers}):
        sums[ancestor] = sums.get(ancestor, 0) + batch.per_seller[seller]
    values = [{"distributor_id": a, "team_sales_fen": sums[a]} for a in sorted(sums) if sums[a]]
    if not values:
        return
    stmt = dialect_insert(DistributorTeamTotal).values(values)
    db.session.execute(
        stmt.on_conflict_do_update(
            index_elements=["distributor_id"],
            set_={
                "team_sales_fen": DistributorTeamTotal.team_sales_fen + stmt.excluded.team_sales_fen
            },
        )
    )


def _add_to_totals(rows) -> None:
    """Add ``rows`` (a select of distributor_id, delta) to the running totals, atomically.

    ``INSERT ... ON CONFLICT DO UPDATE SET total = total + excluded``: a missing row is
    created, an existing one is added to and never overwritten, so concurrent jobs
    cannot lose each other's sales. Rows go in distributor order (the caller's select
    is ordered) so two jobs lock shared ancestors in the same order.
    """
    stmt = dialect_insert(DistributorTeamTotal).from_select(
        ["distributor_id", "team_sales_fen"], rows
    )
    db.session.execute(
        stmt.on_conflict_do_update(
            index_elements=["distributor_id"],
            set_={
                "team_sales_fen": DistributorTeamTotal.team_sales_fen + stmt.excluded.team_sales_fen
            },
        )
    )


def _paths_with_delta(descendant_id: int, delta: int, min_depth: int = 0):
    return select(DistributorPath.ancestor_id, literal(delta, BigInteger)).where(
        DistributorPath.descendant_id == descendant_id, DistributorPath.depth >= min_depth
    )


# Built once: count_order_sales runs in every commission job, refund and cancellation.
_LOCK_SOLD_BY = (
    select(OrderAttribution.id, OrderAttribution.distributor_id, OrderAttribution.team_sales_fen)
    .where(OrderAttribution.order_id == bindparam("order_id"), OrderAttribution.level == 1)
    .with_for_update()
)
_RECOUNT_ORDER = (
    update(OrderAttribution)
    .where(OrderAttribution.id == bindparam("attribution_id"))
    .values(
        team_sales_fen=select(order_sales_fen())
        .where(Order.id == bindparam("counted_order_id"))
        .scalar_subquery()
    )
    .returning(OrderAttribution.team_sales_fen)
    .execution_options(synchronize_session=False)
)
# A staff move of a branch above the seller (``set_parent`` locks the moved distributor
# FOR UPDATE, then moves its total) and this count must not interleave, or the delta goes
# to the old chain after the branch's total has left it. KEY SHARE waits for such a move
# (the upsert after it then reads the new closure rows) and makes a move wait for this
# job, yet never blocks other jobs, whose updates of distributor rows take NO KEY UPDATE.
# PostgreSQL only: SQLite lets one writer in at a time anyway.
_HOLD_CHAIN = text(
    "SELECT id FROM distributors WHERE id IN "
    "(SELECT ancestor_id FROM distributor_paths WHERE descendant_id = :distributor_id) "
    "ORDER BY id FOR KEY SHARE"
)
# ``_add_to_totals`` of the seller and everyone above, as cacheable SQL (SQLAlchemy
# compiles an ``ON CONFLICT`` statement again on every execution; see app/core/sql.py).
_ADD_TO_SELLER_AND_ABOVE = text(
    "INSERT INTO distributor_team_totals (distributor_id, team_sales_fen) "
    "SELECT ancestor_id, CAST(:delta AS BIGINT) FROM distributor_paths "
    "WHERE descendant_id = :distributor_id ORDER BY ancestor_id "
    "ON CONFLICT (distributor_id) DO UPDATE SET "
    "team_sales_fen = distributor_team_totals.team_sales_fen + excluded.team_sales_fen"
)


def count_order_sales(order_id: int) -> int:
    """Bring ``order_id``'s share of its team's sales up to date; return the change.

    Call it in the transaction that changed what the team-sales definition reads
    (payment follow-up, refund, cancellation), after the change. Idempotent. The
    attribution row is locked first and the order read after, so of two concurrent
    callers the second sees what the first counted and the order as it is now.
    """
    row = db.session.execute(_LOCK_SOLD_BY, {"order_id": order_id}).one_or_none()
    if row is None:
        return 0  # nobody sold it: no team counts it
    counted = db.session.scalar(
        _RECOUNT_ORDER, {"attribution_id": row.id, "counted_order_id": order_id}
    )
    delta = int(counted) - int(row.team_sales_fen)
    if delta:
        params = {"distributor_id": row.distributor_id}
        if db.engine.dialect.name == "postgresql":
            db.session.execute(_HOLD_CHAIN, params)
        db.session.execute(_ADD_TO_SELLER_AND_ABOVE, {"delta": delta, **params})
    return delta


def move_branch_sales(distributor_id: int, new_parent_id: int | None) -> int:
    """Move a branch's team sales from its old ancestors to ``new_parent_id``'s chain.

    Call before ``set_parent`` rewrites the closure rows (the old chain is read from
    them); the new parent's chain is not touched by the move. Returns the amount moved.
    """
    moved = db.session.scalar(
        select(DistributorTeamTotal.team_sales_fen)
        .where(DistributorTeamTotal.distributor_id == distributor_id)
        .with_for_update()
    )
    moved = int(moved or 0)
    if not moved:
        return 0
    parts = [_paths_with_delta(distributor_id, -moved, min_depth=1)]
    if new_parent_id is not None:
        parts.append(_paths_with_delta(new_parent_id, moved))
    both = parts[0].union_all(*parts[1:]).subquery()
    net = func.sum(both.c[1])
    _add_to_totals(
        select(both.c[0], net.cast(BigInteger))
        .group_by(both.c[0])
        .having(net != 0)  # a common ancestor keeps the branch
        .order_by(both.c[0])
    )
    return moved


def rebuild_team_totals() -> int:
    """Recompute every order's share and every running total from the orders (flushes).

    For the migration's backfill, after bulk loads, or to check for drift. On PostgreSQL
    it takes EXCLUSIVE locks on both tables first (readers go on; counting jobs wait),
    attributions before totals like the jobs. Returns how many totals it wrote.
    """
    if db.engine.dialect.name == "postgresql":
        db.session.execute(
            text("LOCK TABLE order_attributions, distributor_team_totals IN EXCLUSIVE MODE")
        )
    db.session.execute(
        update(OrderAttribution)
        .values(
            team_sales_fen=case(
                (
                    OrderAttribution.level == 1,
                    select(order_sales_fen())
                    .where(Order.id == OrderAttribution.order_id)
                    .scalar_subquery(),
                ),
                else_=0,
            )
        )
        .execution_options(synchronize_session=False)
    )
    db.session.execute(delete(DistributorTeamTotal).execution_options(synchronize_session=False))
    total = func.sum(OrderAttribution.team_sales_fen)
    db.session.execute(
        insert(DistributorTeamTotal).from_select(
            ["distributor_id", "team_sales_fen"],
            select(DistributorPath.ancestor_id, total.cast(BigInteger))
            .join(
                OrderAttribution,
                (OrderAttribution.distributor_id == DistributorPath.descendant_id)
                & (OrderAttribution.level == 1),
            )
            .group_by(DistributorPath.ancestor_id)
            .having(total != 0),
        )
    )
    db.session.flush()
    return db.session.scalar(select(func.count()).select_from(DistributorTeamTotal))


def team_stats(distributor_id: int) -> TeamStats:
    """Level 1 and 2 counts, team size and team sales of ``distributor_id``."""
    level1, level2, total = team_counts(distributor_id)
    return TeamStats(level1, level2, total, team_sales_fen(distributor_id))
