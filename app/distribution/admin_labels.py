"""The Chinese words the distribution admin pages and the Open API show for stored codes:
modes, statuses, ledger kinds and states, binding events, rule modes; and the legal note
the settings page shows."""

from __future__ import annotations

from app.distribution.models import BIND_MODES, JOIN_MODES, PAYOUT_CHANNELS
from app.distribution.rules import FIXED, NONE, PERCENT

LEGAL_NOTE = (
    "根据《禁止传销条例》，三级及以上、人数达到三十人以上、以下线销售额或发展人头计酬的组织"
    "可能被认定为传销，微信也会封禁此类账号。本系统只对真实、已付款、未退款的销售计佣，"
    "加入分销员不收取任何费用，也不为单纯拉人头发放奖励。"
)

LEVEL_LABELS = {1: "一级", 2: "二级", 3: "三级"}
JOIN_MODE_LABELS = {
    "open": "所有人可加入",
    "apply": "申请后由商家审核",
    "threshold": "累计消费满额自动成为分销员",
}
BIND_MODE_LABELS = {"first_visit": "首次访问即绑定", "first_payment": "首次付款时绑定"}
PAYOUT_CHANNEL_LABELS = {"wechat": "微信商家转账（到零钱）", "manual": "人工打款"}
DISTRIBUTOR_STATUS_LABELS = {
    "pending": "待审核",
    "active": "正常",
    "disabled": "已停用",
    "rejected": "已拒绝",
}
BINDING_ACTION_LABELS = {
    "bind": "绑定",
    "rebind": "改绑",
    "lapse": "过期解绑",
    "extend": "延长保护期",
}
BINDING_SOURCE_LABELS = {"link": "推广链接", "qr": "扫码", "staff": "商家手动"}


MODE_LABELS = {PERCENT: "按比例", FIXED: "固定金额", NONE: "不参与分佣"}

assert set(JOIN_MODE_LABELS) == set(JOIN_MODES)
assert set(BIND_MODE_LABELS) == set(BIND_MODES)
assert set(PAYOUT_CHANNEL_LABELS) == set(PAYOUT_CHANNELS)
