"""The refund pipeline: what follows a completed refund, in one door.

``complete_refund`` (``app/payments/refunds.py``) applies the refund to its line and order
(``app/orders/refunds.book_refund``: stock, the cancellation of an order refunded in full)
and then calls ``refund_completed`` in the same transaction, which, top to bottom:

1. takes back the refunded share of every earning on the line (ledger reversal, the
   proportional rule in ``app/ledger/entries.py``);
2. brings the team totals of the seller and everyone above down (``team.count_order_sales``,
   after the cancellation so a cancelled order counts nothing);
3. lets incentives fall back (``incentives.events.after_refund``: invite rewards of a
   purchase now refunded in full, tasks below target, grades re-checked, leaderboards).

Everything flushes; the refund's edge commits.
"""

from __future__ import annotations

from datetime import datetime

from app.distribution.team import count_order_sales
from app.extensions import db
from app.incentives.events import after_refund
from app.ledger.entries import reverse_for_refund
from app.orders.models import Refund


def refund_completed(refund: Refund, now: datetime | None = None) -> list[int]:
    """Everything a completed refund moves besides the order itself; the ids of the
    reversal entries written now. Call it once the line's and order's ``refunded_fen``
    include the refund (and a fully refunded order is cancelled)."""
    written = reverse_for_refund(refund, now)
    count_order_sales(refund.order_id)  # the seller's team sales lose the refund (and a cancel)
    after_refund(refund)
    db.session.flush()
    return written
