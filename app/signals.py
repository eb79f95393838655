"""What happened in the shop, announced for whoever listens.

Domain code (orders, distribution, incentives) sends these after it has flushed a change;
listeners such as the WeChat notifications (``app/wechat/listeners.py``) subscribe when the
app starts. This keeps the dependencies pointing down: the domain never imports the
packages that react to it. Receivers run inside the sender's transaction, so whatever they
write commits or rolls back with the change that caused it.

Every signal is sent with keyword arguments only; the sender is the module that announces.
"""

from __future__ import annotations

from blinker import Namespace

shop = Namespace()

#: an order was placed (its rows are flushed, it is not paid yet): ``order``. The paid-order
#: pipeline (``app/earnings/listeners.py``) records who earns on it, in the same transaction.
order_placed = shop.signal("order-placed")
#: an unpaid order was cancelled (by the customer, staff or the payment timer): ``order``.
#: The coupons listener (``app/coupons/listeners.py``) gives its coupon back.
order_cancelled = shop.signal("order-cancelled")
#: an order was completed (received): ``order``. The pipeline dates its pending money.
order_completed = shop.signal("order-completed")
#: an order was paid (announced by its follow-up job, after the payment committed):
#: ``order`` (the Order row)
order_paid = shop.signal("order-paid")
#: many orders were paid (a batch of follow-ups announces them at once): ``orders`` (a list
#: of Order rows); each means what ``order_paid`` means for one
orders_paid = shop.signal("orders-paid")
#: an order was shipped: ``order``
order_shipped = shop.signal("order-shipped")
#: paid orders' earnings were written: ``order_ids`` (a list: a batch sends them all at once)
commissions_earned = shop.signal("commissions-earned")
#: pending earnings were settled by one settlement run: ``settled_at``
commissions_settled = shop.signal("commissions-settled")
#: a withdrawal moved to a new status (every move): ``withdrawal``, ``status`` (the new one)
withdrawal_changed = shop.signal("withdrawal-changed")
#: a customer was bound (or rebound) to a distributor: ``user_id``, ``distributor_id``,
#: ``source`` (link, qr, staff)
member_bound = shop.signal("member-bound")
#: a distributor moved up a grade: ``distributor_id``, ``grade`` (the Grade row), ``reason``
grade_changed = shop.signal("grade-changed")


def connect_receivers(receivers) -> None:
    """Connect each ``(signal, receiver)`` pair with a strong reference.

    Receivers are module functions that live as long as the process. Connecting the same
    receiver again is a no-op in blinker, so the app factory may call this for every app a
    process builds (tests build many).
    """
    for signal, receiver in receivers:
        signal.connect(receiver, weak=False)
