"""审计日志 (owner only): every recorded staff action, filtered and paginated."""

from __future__ import annotations

from datetime import timedelta

from flask import render_template, request
from sqlalchemy import select

from app.accounts.models import ApiToken, Staff
from app.admin import bp
from app.admin.audit_fields import field_changes
from app.admin.decorators import owner_required
from app.admin.people import actor_names, actor_text
from app.core.models import AuditLog
from app.core.params import page_arg
from app.core.time import shop_day_start
from app.extensions import db
from app.orders.search import parse_day

PER_PAGE = 50
MAX_FILTER = 64

# Readable names of the actions the edges record.
ACTION_LABELS = {
    "order.ship": "订单发货",
    "refund.approve": "退款通过",
    "refund.reject": "退款驳回",
    "refund.approve_return": "同意退货",
    "refund.receive": "确认退货收货",
    "withdrawal.approve": "提现通过",
    "withdrawal.reject": "提现驳回",
    "withdrawal.mark_paid": "提现标记已付",
    "withdrawal.cancel": "提现撤销转账",
    "distribution_settings.update": "分销设置",
    "grade.create": "新增等级",
    "grade.update": "修改等级",
    "grade.delete": "删除等级",
    "distributor.approve": "分销员审核通过",
    "distributor.reject": "分销员拒绝",
    "distributor.disable": "分销员停用",
    "distributor.enable": "分销员恢复",
    "distributor.change_parent": "调整上级",
    "distributor.set_grade": "调整等级",
    "distributor.update": "修改分销员",
    "binding.rebind": "人工改绑",
    "commission_rule.save": "佣金规则",
    "order_settings.update": "订单设置",
    "customer_service.update": "客服设置",
    "notification_settings.update": "通知设置",
    "product.update": "商品修改",
    "sku.set_stock": "设置库存",
    "sku.adjust_stock": "调整库存",
    "agent.approve": "区域代理通过",
    "agent.reject": "区域代理驳回",
    "agent.revoke": "区域代理撤销",
    "agent.transfer": "区域代理转让",
    "agent.assign": "指定区域代理",
    "cloud_settings.update": "代理分红设置",
    "agent_rate.save": "商品代理分红",
    "merchant_levels.save": "订货商等级与价格",
    "merchant.create": "新增订货商",
    "merchant.status": "订货商状态",
    "merchant.update": "修改订货商",
    "staff.login_lock": "登录锁定",
    "staff.sign_out_everywhere": "退出所有设备",
    "staff.password_reset": "重置员工密码",
    "staff.password_change": "修改密码",
    "staff.deactivate": "停用员工",
    "staff.activate": "启用员工",
    "api_token.create": "创建 API 令牌",
    "api_token.revoke": "撤销 API 令牌",
}

# What an entry is about, in words (the subject column).
SUBJECT_LABELS = {
    "order": "订单",
    "refund": "退款",
    "withdrawal": "提现",
    "distribution_settings": "分销设置",
    "grade": "分销员等级",
    "distributor": "分销员",
    "binding": "客户绑定",
    "commission_rule": "佣金规则",
    "product": "商品",
    "sku": "SKU",
    "order_settings": "订单设置",
    "notification_settings": "通知设置",
    "agent": "区域代理",
    "cloud_settings": "代理分红设置",
    "agent_rate": "商品代理分红",
    "merchant": "订货商",
    "merchant_levels": "订货商等级",
    "staff": "员工",
    "api_token": "API 令牌",
    "user": "顾客",
}


def _filters() -> tuple[dict[str, str], list, str | None]:
    """The filter arguments as given, the SQL conditions they make, and an error."""
    args = {
        key: (request.args.get(key) or "").strip()[:MAX_FILTER]
        for key in ("actor", "action", "subject", "subject_id", "from", "to")
    }
    conditions = []
    for key, column in (
        ("actor", AuditLog.actor),
        ("action", AuditLog.action),
        ("subject", AuditLog.subject),
        ("subject_id", AuditLog.subject_id),
    ):
        if args[key]:
            conditions.append(column == args[key])
    try:
        start, end = parse_day(args["from"]), parse_day(args["to"])
    except ValueError as exc:
        return args, conditions, str(exc)
    if start is not None:
        conditions.append(AuditLog.created_at >= shop_day_start(start))
    if end is not None:
        conditions.append(AuditLog.created_at < shop_day_start(end + timedelta(days=1)))
    return args, conditions, None


@bp.get("/audit")
@owner_required
def audit_log():
    """The audit log, newest first, with filters (actor, action, subject, dates)."""
    args, conditions, error = _filters()
    pagination = db.paginate(
        select(AuditLog).where(*conditions).order_by(AuditLog.id.desc()),
        page=page_arg(),
        per_page=PER_PAGE,
        error_out=False,
    )
    actions = db.session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action))
    subjects = db.session.scalars(select(AuditLog.subject).distinct().order_by(AuditLog.subject))
    staff = db.session.scalars(select(Staff).order_by(Staff.id)).all()
    tokens = db.session.scalars(select(ApiToken).order_by(ApiToken.id)).all()
    names = actor_names(
        [e.actor for e in pagination.items]
        + [f"staff:{s.id}" for s in staff]
        + [f"api:{t.id}" for t in tokens]
        + ([args["actor"]] if args["actor"] else [])
    )
    return render_template(
        "admin/audit.html",
        pagination=pagination,
        args={k: v for k, v in args.items() if v},
        form=args,
        actions=list(actions),
        labels=ACTION_LABELS,
        subjects=list(subjects),
        subject_labels=SUBJECT_LABELS,
        actors=[(f"staff:{s.id}", names[f"staff:{s.id}"]) for s in staff]
        + [(f"api:{t.id}", names[f"api:{t.id}"]) for t in tokens],
        actor=lambda a: actor_text(a, names),
        changes=field_changes,
        error=error,
    ), (422 if error else 200)
