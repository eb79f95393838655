"""The paid-order pipeline: what happens to money when an order is paid or refunded.

``on_paid`` follows up paid orders (attribution, the calculators' rows, the ledger, then
team totals, joining, grades, incentives and the announcement), ``on_refund`` a completed
refund; ``plan`` is the one precedence rule (commissions, 级差 or both) and ``simulator``
runs the same plan and calculators without writing. Calculators live below this package
(``distribution.levels``, ``cloud.price_difference``, ``cloud.dividends``) and never import it.
"""
