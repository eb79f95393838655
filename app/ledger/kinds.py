"""Every ledger entry kind and state, and what people read for them (zh-CN), once.

An entry's ``kind`` says why money moved; its ``state`` where it is in its life
(``entries.TRANSITIONS`` says which state may follow which).
"""

from __future__ import annotations

# --- kinds ------------------------------------------------------------------------------------

LEVEL_KINDS = ("level_1", "level_2", "level_3")
REGION_DIVIDEND = "region_dividend"
PRICE_DIFFERENCE = "price_difference"
TASK_REWARD = "task_reward"
INVITE_REWARD = "invite_reward"
WITHDRAWAL = "withdrawal"
REVERSAL = "reversal"

# Every per-line earning: commissions, regional dividends and price differences all
# reverse proportionally on refund and settle the same way.
LINE_EARNING_KINDS = (*LEVEL_KINDS, REGION_DIVIDEND, PRICE_DIFFERENCE)
# Earnings without an order line, written once per ``reward_key``.
REWARD_KINDS = (TASK_REWARD, INVITE_REWARD)
# What commission settlement moves from pending to settled (rewards settle on their own
# rule: app/ledger/settlement.py).
SETTLEABLE_KINDS = (*LINE_EARNING_KINDS, REVERSAL)
LEDGER_KINDS = (*LINE_EARNING_KINDS, *REWARD_KINDS, WITHDRAWAL, REVERSAL)

# --- states -----------------------------------------------------------------------------------

PENDING, SETTLED, WITHDRAWN, REVERSED = "pending", "settled", "withdrawn", "reversed"
LEDGER_STATES = (PENDING, SETTLED, WITHDRAWN, REVERSED)

# --- labels -----------------------------------------------------------------------------------

# Staff pages (admin ledger, distributor detail).
KIND_LABELS = {
    "level_1": "一级佣金",
    "level_2": "二级佣金",
    "level_3": "三级佣金",
    REGION_DIVIDEND: "区域分红",
    PRICE_DIFFERENCE: "级差",
    TASK_REWARD: "任务奖励",
    INVITE_REWARD: "邀请奖励",
    WITHDRAWAL: "提现",
    REVERSAL: "冲回",
}
STATE_LABELS = {
    PENDING: "待结算",
    SETTLED: "已结算",
    WITHDRAWN: "已提现",
    REVERSED: "已失效",
}

# The distributor centre speaks to the earner: a settled entry is money they can withdraw,
# a reversal is what a refund took back.
CENTRE_KIND_LABELS = {
    **KIND_LABELS,
    PRICE_DIFFERENCE: "级差收益",
    REVERSAL: "退款扣回",
}
CENTRE_STATE_LABELS = {**STATE_LABELS, SETTLED: "可提现"}

# What an order earns, grouped as a WeChat message names it: the level kinds are one
# group, "commission".
COMMISSION_GROUP = "commission"
EARNED_LABELS = {
    COMMISSION_GROUP: "佣金",
    REGION_DIVIDEND: "区域分红",
    PRICE_DIFFERENCE: "级差收益",
}


def earned_group(kind: str) -> str:
    """The message group of a line-earning kind (levels 1-3 are all "commission")."""
    return COMMISSION_GROUP if kind in LEVEL_KINDS else kind
