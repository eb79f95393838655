"""The pipeline hears the orders' own events (``app/signals.py``).

Orders sit below the money path: placing an order and completing it are announced, and the
pipeline wires what follows, so ``app/orders`` imports neither distribution nor the ledger.
Receivers run inside the sender's transaction (blinker calls them in place), so what they
write commits or rolls back with the order.

- ``order_placed`` → ``attribute_order``: who earns at each level is fixed at placement.
- ``order_completed`` → ``schedule_order``: the order's pending money gets its
  ``settle_after`` (completion + the shop's hold days).

``connect_listeners`` is called by the app factory, once per process (like the WeChat
listeners): every web process, worker and CLI command builds the app, so no order is placed
or completed without them.
"""

from __future__ import annotations

from app import signals
from app.distribution.attribution import attribute_order
from app.ledger.settlement import schedule_order


def on_order_placed(sender, *, order) -> None:
    """Record the order's attribution (level 1 first; no rows when nobody earns)."""
    attribute_order(order)


def on_order_completed(sender, *, order) -> None:
    """Date the order's pending money: settle_after = completion + hold days."""
    schedule_order(order.id, order.completed_at)


RECEIVERS = (
    (signals.order_placed, on_order_placed),
    (signals.order_completed, on_order_completed),
)


def connect_listeners() -> None:
    """Connect the pipeline's receivers to the orders' signals, once per process.

    Strong references (``weak=False``): module functions that must live as long as the
    process; connecting again is a no-op in blinker.
    """
    signals.connect_receivers(RECEIVERS)
