"""Where incentives hear of the events that move them (each called inside the event's
own transaction; everything here flushes, the edge commits):

- ``after_payment(order)``: from the paid-order pipeline (app/earnings/on_paid.py),
  after the earnings, team totals and grade upgrades: tasks of the people the order
  counts for, the invite reward of a buyer who is someone's invitee;
- ``after_refund(refund)``: from the refund pipeline (app/earnings/on_refund.py) when a
  refund completes: invite rewards of a purchase now refunded in full, tasks that fall
  back below target, grades.

Both mark the distributors whose leaderboard figures may have moved; once the
transaction commits, their scores are recomputed and written to Redis
(app/incentives/leaderboards.py). A rollback forgets them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import bindparam, event, select, union, update

from app.core.batch import memo
from app.distribution.models import Binding, Distributor, OrderAttribution
from app.extensions import db
from app.incentives import invites, tasks
from app.incentives.grades import upgrade_many
from app.incentives.leaderboards import sync_members
from app.ledger.models import LedgerEntry
from app.orders.models import Order, Refund

log = logging.getLogger(__name__)

_PENDING_KEY = "incentives_leaderboard_ids"
_HOOKED_KEY = "incentives_leaderboard_hooked"


def _lock_distributors(ids: set[int]) -> None:
    """Serialise task evaluation per distributor until the transaction ends (a no-op
    UPDATE: row locks on PostgreSQL), so two orders reaching a target together are
    counted by whichever evaluation comes second."""
    if ids:
        db.session.execute(
            update(Distributor)
            .where(Distributor.id.in_(sorted(ids)))
            .values(status=Distributor.status)
            .execution_options(synchronize_session=False)
        )


# Built once with bound parameters: every paid order and refund runs it.
_PEOPLE_OF_ORDER = union(
    select(OrderAttribution.distributor_id).where(
        OrderAttribution.order_id == bindparam("order_id")
    ),
    select(LedgerEntry.distributor_id).where(LedgerEntry.order_id == bindparam("order_id")),
    select(Distributor.parent_id).where(Distributor.user_id == bindparam("user_id")),
    select(Binding.distributor_id).where(Binding.user_id == bindparam("user_id")),
)


def _order_people(order: Order) -> set[int]:
    """Everyone whose figures an order touches: attributed levels, ledger beneficiaries,
    the buyer's inviter and binding (``tasks.affected_by_order`` and more; one query)."""
    found = db.session.scalars(_PEOPLE_OF_ORDER, {"order_id": order.id, "user_id": order.user_id})
    return {i for i in found if i is not None}


def after_payment(order: Order, *, leaderboards: bool = True) -> dict:
    """Tasks and invite rewards after ``order``'s commissions are written (flushes).

    ``leaderboards=False``: the caller marks the order's people for the leaderboards
    itself, once for a batch (``mark_orders_for_leaderboards``)."""
    if order.paid_at is None:
        return {"tasks": [], "invite": None}
    written: list[int] = []
    # No task covers the payment (most of the time): nothing to lock or evaluate.
    if tasks.tasks_covering(order.paid_at):
        people = tasks.affected_by_order(order)
        # Locks last until the commit: in a batch, each distributor is locked once.
        locked = memo(_LOCKED, set)
        _lock_distributors(people - locked)
        locked |= people
        written = tasks.evaluate_for(people, order.paid_at)
    invite = invites.on_order_paid(order)
    if leaderboards:
        mark_for_leaderboards(_order_people(order))
    return {"tasks": written, "invite": invite}


_LOCKED = "incentives:locked"  # distributors locked in this batch's transaction


def progress_moved(distributor_ids: Iterable[int] | None = None) -> None:
    """The pipeline wrote something that moves these distributors' task progress or
    eligibility (a join under them, a grade upgrade; None: anyone's, e.g. attributions
    written): their tasks are evaluated again at the next order of the batch."""
    tasks.forget_evaluations(distributor_ids)


def load_affected_by_orders(order_ids: list[int]) -> None:
    """Inside a batch of follow-ups that writes no attribution or binding: the people each
    order's tasks concern, for every order in one query (``tasks.affected_by_order``)."""
    tasks.load_affected_by_orders(order_ids)


def mark_orders_for_leaderboards(orders: list[Order]) -> None:
    """``mark_for_leaderboards`` of everyone the orders touch, in one query (a batch's
    end: the same people ``_order_people`` finds order by order, or more)."""
    if not orders:
        return
    order_ids = [o.id for o in orders]
    user_ids = sorted({o.user_id for o in orders})
    found = db.session.scalars(
        union(
            select(OrderAttribution.distributor_id).where(OrderAttribution.order_id.in_(order_ids)),
            select(LedgerEntry.distributor_id).where(LedgerEntry.order_id.in_(order_ids)),
            select(Distributor.parent_id).where(Distributor.user_id.in_(user_ids)),
            select(Binding.distributor_id).where(Binding.user_id.in_(user_ids)),
        )
    )
    mark_for_leaderboards({i for i in found if i is not None})


def after_refund(refund: Refund) -> dict:
    """Reverse what a completed refund takes back (flushes)."""
    order = db.session.get(Order, refund.order_id)
    if order is None or order.paid_at is None:
        return {"tasks": [], "invites": []}
    reversed_invites = invites.on_refund(order, refund.id)
    people = tasks.affected_by_order(order)
    written = tasks.evaluate_for(people, order.paid_at, refund_id=refund.id)
    upgrade_many(sorted(people), "退款后复核")  # never lowers a grade
    mark_for_leaderboards(_order_people(order))
    return {"tasks": written, "invites": reversed_invites}


# --- leaderboards after the commit -----------------------------------------------------------


def mark_for_leaderboards(distributor_ids) -> None:
    """Sync these distributors' leaderboard scores once the transaction commits."""
    session = db.session()
    session.info.setdefault(_PENDING_KEY, set()).update(distributor_ids)
    if not session.info.get(_HOOKED_KEY):
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)
        session.info[_HOOKED_KEY] = True


def _after_commit(session) -> None:
    ids = session.info.pop(_PENDING_KEY, set())
    if not ids:
        return
    try:
        # The session cannot run SQL inside after_commit: read on a connection of its own.
        with db.engine.connect() as conn:
            sync_members(ids, conn=conn)
    except Exception:  # Redis down: the money is committed; the periodic rebuild catches up
        log.exception("leaderboard sync failed for %s", sorted(ids))


def _after_rollback(session) -> None:
    session.info.pop(_PENDING_KEY, None)
