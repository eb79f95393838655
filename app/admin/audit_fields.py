"""The audit log read by people: changed fields in Chinese, values as staff write them
(¥12.34, 10%, 是/否, Beijing time), before and after side by side."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.core.money import format_yuan
from app.core.time import shop_time_text

FIELD_LABELS = {
    "id": "编号",
    "name": "名称",
    "title": "标题",
    "status": "状态",
    "state": "状态",
    "active": "启用",
    "enabled": "启用",
    "role": "角色",
    "username": "用户名",
    "nickname": "昵称",
    "user_id": "用户",
    "distributor_id": "分销员",
    "previous_distributor_id": "原分销员",
    "parent_id": "上级",
    "grade_id": "等级",
    "merchant_id": "订货商",
    "order_id": "订单",
    "order_line_id": "订单行",
    "refund_id": "退款",
    "withdrawal_id": "提现",
    "product_id": "商品",
    "sku_id": "SKU",
    "category_id": "分类",
    "task_id": "任务",
    "code": "推广码",
    "level": "等级 / 级别",
    "levels": "分销层级",
    "rank": "排序",
    "kind": "类型",
    "mode": "方式",
    "source": "来源",
    "scope": "权限",
    "note": "备注",
    "reason": "原因",
    "review_note": "审核备注",
    "remark": "备注",
    "amount_fen": "金额",
    "price_fen": "价格",
    "original_price_fen": "原价",
    "paid_fen": "实付",
    "total_fen": "应付",
    "items_fen": "商品金额",
    "shipping_fen": "运费",
    "refunded_fen": "已退金额",
    "fee_fen": "手续费",
    "reward_fen": "奖励金额",
    "invite_reward_fen": "邀请奖励",
    "invite_reward_enabled": "邀请奖励开关",
    "leaderboards_enabled": "排行榜开关",
    "stock": "库存",
    "quantity": "数量",
    "restock": "退回库存",
    "carrier": "快递公司",
    "tracking_number": "快递单号",
    "transaction_id": "支付单号",
    "self_purchase": "自购返佣",
    "join_mode": "加入方式",
    "join_threshold_fen": "加入门槛",
    "bind_mode": "绑定方式",
    "binding_days": "绑定有效天数",
    "protection_days": "保护期天数",
    "protection_extend_days": "每单延长保护天数",
    "settlement_hold_days": "结算冻结天数",
    "level1_bp": "一级比例",
    "level2_bp": "二级比例",
    "level3_bp": "三级比例",
    "level1": "一级",
    "level2": "二级",
    "level3": "三级",
    "withdraw_min_fen": "最低提现金额",
    "withdraw_fee_bp": "提现手续费率",
    "withdraw_daily_limit": "每日提现次数",
    "payout_channel": "打款方式",
    "payout_cap_bp": "佣金总额上限",
    "upgrade_team_sales_fen": "升级所需团队销售额",
    "upgrade_direct_count": "升级所需直属人数",
    "rate_bp": "比例",
    "discount_bp": "折扣",
    "province_bp": "省级分红比例",
    "city_bp": "市级分红比例",
    "district_bp": "区县级分红比例",
    "agents_enabled": "区域代理开关",
    "region_code": "地区代码",
    "region_name": "地区",
    "precedence": "优先级",
    "shop_name": "店铺名称",
    "shipping_fee_fen": "运费",
    "free_shipping_over_fen": "包邮门槛",
    "pay_timeout_minutes": "付款时限（分钟）",
    "max_unpaid_orders": "最多未付款订单",
    "auto_complete_days": "自动确认收货天数",
    "on_shelf": "上架",
    "featured": "推荐",
    "purchase_limit": "限购",
    "rule_source": "规则来源",
    "target_kind": "目标类型",
    "target_value": "目标值",
    "starts_at": "开始时间",
    "ends_at": "结束时间",
    "expires_at": "到期时间",
    "created_at": "创建时间",
    "updated_at": "更新时间",
    "approved_at": "通过时间",
    "reviewed_at": "审核时间",
    "revoked_at": "撤销时间",
    "shipped_at": "发货时间",
    "paid_at": "付款时间",
    "completed_at": "完成时间",
    "cancelled_at": "取消时间",
    "ended_at": "结束时间",
    "bound_at": "绑定时间",
    "protected_until": "保护期至",
    "last_login_at": "最近登录",
}
BOOL_TEXT = {True: "是", False: "否"}
MAX_TEXT = 200


@dataclass(frozen=True)
class FieldChange:
    key: str
    label: str
    before: str
    after: str
    changed: bool


def value_text(key: str, value: Any) -> str:
    """A stored value as staff read it: money in yuan, rates in %, booleans 是/否,
    ISO times in Beijing time; anything nested as compact JSON."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return BOOL_TEXT[value]
    if isinstance(value, int) and key.endswith("_fen"):
        return format_yuan(value)
    if isinstance(value, int) and key.endswith("_bp"):
        whole, rest = divmod(value, 100)
        return f"{whole}.{rest:02d}".rstrip("0").rstrip(".") + "%"
    if isinstance(value, str) and key.endswith(("_at", "_until")) and len(value) >= 19:
        try:
            return shop_time_text(datetime.fromisoformat(value))
        except ValueError:
            return value[:MAX_TEXT]
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"
    return str(value)[:MAX_TEXT]


def _rows_by_id(side: dict) -> bool:
    """Whether ``side`` holds whole rows keyed by their ids (``{"2": {"id": 2, ...}}``), as
    the audit records several rows of one action (bindings, levels)."""
    return bool(side) and all(isinstance(v, dict) for v in side.values())


def field_changes(before: dict | None, after: dict | None) -> list[FieldChange]:
    """Every field of either side, changed ones first, each with its Chinese label; rows
    keyed by id are opened, their fields labelled ``#2 绑定时间``."""
    before, after = before or {}, after or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        before, after = {"value": before}, {"value": after}
    if (
        (_rows_by_id(before) or not before)
        and (_rows_by_id(after) or not after)
        and (before or after)
    ):
        rows = []
        for key in dict.fromkeys([*before, *after]):
            for row in field_changes(before.get(key) or {}, after.get(key) or {}):
                label = f"#{key} {row.label}" if len(before) + len(after) > 2 else row.label
                rows.append(FieldChange(row.key, label, row.before, row.after, row.changed))
        rows.sort(key=lambda r: not r.changed)
        return rows
    rows = []
    for key in dict.fromkeys([*before, *after]):
        old, new = before.get(key), after.get(key)
        changed = key not in before or key not in after or old != new
        rows.append(
            FieldChange(
                key,
                FIELD_LABELS.get(key, key),
                value_text(key, old) if key in before else "—",
                value_text(key, new) if key in after else "—",
                changed,
            )
        )
    rows.sort(key=lambda r: not r.changed)
    return rows
