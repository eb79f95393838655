"""Splitting an order-level discount across the eligible lines (a pure function).

The rule (docs/coupons.md): each eligible line gets ``discount × its amount ÷ the eligible
total``, rounded down to the fen; the fen left over by the rounding go to the line with the
largest amount (ties: the lowest line id). A line never gets more than its own amount: in
the rare case where the remainder would push the largest line below zero (many tiny lines),
what does not fit goes on to the next line in the same order (largest amount, lowest id).
"""

from __future__ import annotations


def coupon_discount(
    kind: str, eligible_fen: int, *, threshold_fen: int, off_fen: int, off_bp: int, max_off_fen: int
) -> int:
    """The discount a coupon gives on ``eligible_fen`` of goods (0 when it does not apply).

    满减 (``amount_off``): ``off_fen`` once the goods reach ``threshold_fen``; 无门槛
    (``no_threshold``): ``off_fen``; 折扣 (``percent_off``): ``eligible × off_bp ÷ 10000``
    rounded down, at most ``max_off_fen`` when set, once the goods reach ``threshold_fen``.
    Never more than the eligible goods.
    """
    if eligible_fen <= 0:
        return 0
    if kind == "no_threshold":
        off = off_fen
    elif eligible_fen < threshold_fen:
        return 0
    elif kind == "amount_off":
        off = off_fen
    elif kind == "percent_off":
        off = eligible_fen * off_bp // 10000
        if max_off_fen > 0:
            off = min(off, max_off_fen)
    else:
        raise ValueError(f"unknown coupon kind {kind!r}")
    return max(0, min(off, eligible_fen))


def allocate(lines: list[tuple[int, int]], discount_fen: int) -> dict[int, int]:
    """{line id: its share} of ``discount_fen`` over ``lines`` [(line id, amount in fen)].

    Shares are floors of the proportional split; the remainder goes to the largest line
    (ties: lowest id). The shares sum to ``min(discount, total)`` exactly.
    """
    total = sum(amount for _, amount in lines)
    discount = max(0, min(discount_fen, total))
    if total == 0 or discount == 0:
        return {line_id: 0 for line_id, _ in lines}
    shares = {line_id: discount * amount // total for line_id, amount in lines}
    left = discount - sum(shares.values())
    for line_id, amount in sorted(lines, key=lambda line: (-line[1], line[0])):
        if left == 0:
            break
        room = amount - shares[line_id]
        given = min(room, left)
        shares[line_id] += given
        left -= given
    return shares
