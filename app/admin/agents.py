"""Admin pages of regional agents: the region table with sales, applications, assign,
approve, reject, revoke, transfer, and the dividend settings with product overrides.

Views read the form, call app.cloud.agents, commit once and redirect with a flash; a
refused change comes back as the service's Chinese message, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from app import regions
from app.accounts.models import User
from app.admin import bp
from app.admin.decorators import owner_required, staff_required
from app.admin.orders import _actor_names, actor_label
from app.catalog.models import Product
from app.cloud import agents as svc
from app.cloud import dividends as div
from app.cloud.models import AGENT_LEVELS, AgentProductRate, CloudSettings, RegionAgent
from app.core.audit import audited, form_int, row, rows
from app.core.models import StatusChange
from app.core.params import bounded_int, page_arg
from app.core.status import InvalidTransition
from app.distribution.models import Distributor
from app.distribution.payout_cap import RateRefused
from app.distribution.rules import format_bp
from app.extensions import db
from app.ledger.balances import balances

PER_PAGE = 30
STATUS_TABS = [("", "全部"), ("pending", "待审核"), ("active", "生效中"), ("revoked", "已撤销")]


def _actor() -> str:
    return current_user.get_id()  # "staff:<id>"


def find_user(text: str) -> User | None:
    """A customer by user id (digits) or by their distributor code, as staff type it."""
    text = (text or "").strip()
    if not text:
        return None
    if text.lstrip("#").isdecimal() and len(text) < 10:
        return db.session.get(User, int(text.lstrip("#")))
    distributor = db.session.scalar(
        select(Distributor).where(Distributor.code == text.upper()[:16])
    )
    return db.session.get(User, distributor.user_id) if distributor is not None else None


def transition_message(err: InvalidTransition) -> str:
    """A refused status change in people's words (someone else decided meanwhile)."""
    label = svc.STATUS_LABELS.get(err.current, err.current)
    return f"该代理当前状态为“{label}”，不能进行此操作，请刷新后查看"


# --- the region table -------------------------------------------------------------------------


@dataclass
class RegionRow:
    """One province, city or district of the table, with its agent and its sales."""

    level: str
    code: str
    name: str
    agent: RegionAgent | None = None
    orders: int = 0
    sales_fen: int = 0
    children: list[RegionRow] = field(default_factory=list)


def _parents(level: str, code: str) -> list[tuple[str, regions.Region]]:
    """[(level, region)] from the province down to the region itself."""
    if level == "province":
        region = svc.region_for("province", code)
        return [("province", region)] if region else []
    if level == "city":
        province = svc.region_for("province", code[:2] + "0000")
        city = svc.region_for("city", code)
        return [("province", province), ("city", city)] if province and city else []
    resolved = regions.resolve(code)
    if resolved is None:
        return []
    return [
        ("province", resolved.province),
        ("city", resolved.city),
        ("district", resolved.district),
    ]


def region_table(held: list[RegionAgent]) -> list[RegionRow]:
    """Provinces → cities → districts that have an agent (pending or active) or sales,
    each with its agent and its sales (district totals grouped in SQL, added up the tree)."""
    sales = div.sales_rollup()
    nodes: dict[tuple[str, str], RegionRow] = {}
    roots: list[RegionRow] = []

    def node(path: list[tuple[str, regions.Region]]) -> RegionRow | None:
        parent = None
        row = None
        for level, region in path:
            key = (level, region.code)
            row = nodes.get(key)
            if row is None:
                figures = sales.get(key)
                row = RegionRow(level, region.code, region.name)
                if figures is not None:
                    row.orders, row.sales_fen = figures.orders, figures.sales_fen
                nodes[key] = row
                (parent.children if parent is not None else roots).append(row)
            parent = row
        return row

    for agent in held:
        row = node(_parents(agent.level, agent.region_code))
        if row is not None and (row.agent is None or agent.status == "active"):
            row.agent = agent
    for level, code in sales:
        if level == "district":
            node(_parents(level, code))

    def ordered(rows: list[RegionRow]) -> list[RegionRow]:
        rows.sort(key=lambda r: (-r.sales_fen, r.code))
        for r in rows:
            ordered(r.children)
        return rows

    return ordered(roots)


# The agent rates of the product named by the form (audit target).
AGENT_RATES_OF_FORM_PRODUCT = rows(
    AgentProductRate,
    "agent_product_rate",
    where=lambda **_: AgentProductRate.product_id == form_int("product_id"),
)


@bp.get("/agents")
@staff_required
def agents():
    """The region table: every region with an agent or with sales, and the assign form."""
    held = list(
        db.session.scalars(select(RegionAgent).where(RegionAgent.status.in_(svc.HELD_STATUSES)))
    )
    counts = dict(
        db.session.execute(
            select(RegionAgent.status, func.count(RegionAgent.id)).group_by(RegionAgent.status)
        ).all()
    )
    users = {
        u.id: u
        for u in db.session.scalars(select(User).where(User.id.in_({a.user_id for a in held})))
    }
    return render_template(
        "admin/agents.html",
        table=region_table(held),
        users=users,
        counts=counts,
        settings=svc.get_cloud_settings(),
        levels=svc.LEVEL_LABELS,
        labels=svc.STATUS_LABELS,
        format_bp=format_bp,
        provinces=regions.provinces(),
    )


@bp.get("/agents/list")
@staff_required
def agents_list():
    """Every agent row by status (applications first in their tab)."""
    status = request.args.get("status", "")
    status = status if status in svc.STATUS_LABELS else ""
    query = select(RegionAgent).order_by(RegionAgent.id.desc())
    if status:
        query = query.where(RegionAgent.status == status)
    pagination = db.paginate(
        query,
        page=page_arg(),
        per_page=PER_PAGE,
        error_out=False,
    )
    users = {
        u.id: u
        for u in db.session.scalars(
            select(User).where(User.id.in_({a.user_id for a in pagination.items}))
        )
    }
    counts = dict(
        db.session.execute(
            select(RegionAgent.status, func.count(RegionAgent.id)).group_by(RegionAgent.status)
        ).all()
    )
    counts[""] = sum(counts.values())
    return render_template(
        "admin/agents_list.html",
        pagination=pagination,
        users=users,
        status=status,
        tabs=STATUS_TABS,
        counts=counts,
        levels=svc.LEVEL_LABELS,
        labels=svc.STATUS_LABELS,
        args={"status": status} if status else {},
    )


@bp.get("/agents/<int:agent_id>")
@staff_required
def agent_detail(agent_id: int):
    """One agent row: its region, user, sales while held, money, history; decisions."""
    agent = db.get_or_404(RegionAgent, agent_id)
    history = list(
        db.session.scalars(
            select(StatusChange)
            .where(StatusChange.subject == "agent", StatusChange.subject_id == agent.id)
            .order_by(StatusChange.id)
        )
    )
    names = _actor_names(history)
    orders, sales = div.region_sales([agent]) if agent.status == "active" else (0, 0)
    return render_template(
        "admin/agents_detail.html",
        agent=agent,
        user=db.session.get(User, agent.user_id),
        money=balances(agent.distributor_id),
        totals=div.dividend_totals(agent.distributor_id),
        orders=orders,
        sales=sales,
        history=[(c, actor_label(c.actor, names)) for c in history],
        levels=svc.LEVEL_LABELS,
        labels=svc.STATUS_LABELS,
    )


def _back(agent: RegionAgent | None = None) -> str:
    target = request.form.get("back", "")
    if target == "list":
        return url_for("admin.agents_list", status=request.form.get("status") or None)
    if target == "table" or agent is None:
        return url_for("admin.agents")
    return url_for("admin.agent_detail", agent_id=agent.id)


def _decide(agent_id: int, action, done: str):
    agent = db.get_or_404(RegionAgent, agent_id)
    back = _back(agent)
    try:
        result = action(agent)
    except InvalidTransition as err:
        db.session.rollback()
        flash(transition_message(err), "error")
        return redirect(back)
    except svc.AgentError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(back)
    db.session.commit()
    flash(f"{agent.region_name}（{svc.LEVEL_LABELS[agent.level]}）{done}", "success")
    if isinstance(result, RegionAgent) and result.id != agent.id:
        return redirect(url_for("admin.agent_detail", agent_id=result.id))
    return redirect(back)


@bp.post("/agents/<int:agent_id>/approve")
@staff_required
@audited("agent.approve", row(RegionAgent, "agent_id"))
def agent_approve(agent_id: int):
    """Approve an application: the agent earns on orders paid from now on."""
    return _decide(agent_id, lambda a: svc.approve(a, _actor()), "已通过审核")


@bp.post("/agents/<int:agent_id>/reject")
@staff_required
@audited("agent.reject", row(RegionAgent, "agent_id"))
def agent_reject(agent_id: int):
    """Refuse an application with a reason the applicant sees."""
    reason = request.form.get("reason", "")[:200]
    return _decide(agent_id, lambda a: svc.reject(a, _actor(), reason), "已驳回")


@bp.post("/agents/<int:agent_id>/revoke")
@staff_required
@audited("agent.revoke", row(RegionAgent, "agent_id"))
def agent_revoke(agent_id: int):
    """Revoke an active agent (earned dividends stay); the region is free again."""
    reason = request.form.get("reason", "")[:200]
    return _decide(agent_id, lambda a: svc.revoke(a, _actor(), reason), "已撤销")


@bp.post("/agents/<int:agent_id>/transfer")
@staff_required
@audited("agent.transfer", row(RegionAgent, "agent_id"))
def agent_transfer(agent_id: int):
    """Hand the region to another customer (user id or distributor code)."""
    target = find_user(request.form.get("to", "")[:20])
    reason = request.form.get("reason", "")[:200]

    def action(agent: RegionAgent):
        if target is None:
            raise svc.AgentError("not_found", "找不到接收人：请填写用户编号或推广码", 404)
        return svc.transfer(agent, target.id, _actor(), reason)

    return _decide(agent_id, action, "已转让")


@bp.post("/agents/assign")
@staff_required
@audited("agent.assign", rows(RegionAgent, "region_agent"))
def agent_assign():
    """Make a customer the active agent of a region directly."""
    user = find_user(request.form.get("user", "")[:20])
    level = (request.form.get("level") or "")[:10]
    code = (request.form.get("region_code") or "").strip()[:6]
    if user is None:
        flash("找不到该用户：请填写用户编号或推广码", "error")
        return redirect(url_for("admin.agents"))
    try:
        agent = svc.assign_region(user.id, level, code, _actor())
    except svc.AgentError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(url_for("admin.agents"))
    db.session.commit()
    flash(f"已指定 {user.nickname or '用户' + str(user.id)} 为 {agent.region_name} 代理", "success")
    return redirect(url_for("admin.agents"))


# --- settings and product overrides -----------------------------------------------------------


@bp.get("/agents/settings")
@owner_required
def agent_settings():
    """Dividend rates per level, on/off, and per-product overrides."""
    settings = svc.get_cloud_settings()
    db.session.commit()  # get_cloud_settings may have created the row
    overrides = svc.product_rates()
    titles = dict(
        db.session.execute(
            select(Product.id, Product.title).where(
                Product.id.in_({r.product_id for r in overrides})
            )
        ).all()
    )
    return render_template(
        "admin/agents_settings.html",
        settings=settings,
        overrides=overrides,
        titles=titles,
        levels=svc.LEVEL_LABELS,
        format_bp=format_bp,
    )


def _bp_field(name: str) -> int:
    raw = (request.form.get(name) or "").strip()
    if not raw.isdecimal() or len(raw) > 5:
        raise svc.AgentError("invalid_rate", "分红比例应为 0 到 10000 之间的整数（万分比）", 422)
    return int(raw)


@bp.post("/agents/settings")
@owner_required
@audited("cloud_settings.update", rows(CloudSettings, "cloud_settings"))
def agent_settings_save():
    """Save the rates and the on/off switch."""
    try:
        svc.update_cloud_settings(
            {
                "agents_enabled": request.form.get("agents_enabled") == "on",
                **{f"{level}_bp": _bp_field(f"{level}_bp") for level in AGENT_LEVELS},
            },
            owner=current_user.is_owner,
        )
    except (svc.AgentError, RateRefused) as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(url_for("admin.agent_settings"))
    db.session.commit()
    flash("区域代理设置已保存", "success")
    return redirect(url_for("admin.agent_settings"))


@bp.post("/agents/rates")
@owner_required
@audited("agent_rate.save", AGENT_RATES_OF_FORM_PRODUCT)
def agent_rate_save():
    """Set or (empty rate) remove a product's dividend rate for one level."""
    raw_product = (request.form.get("product_id") or "").strip()
    level = (request.form.get("level") or "")[:10]
    product_id = bounded_int(raw_product)
    product = db.session.get(Product, product_id) if product_id is not None else None
    try:
        if product is None:
            raise svc.AgentError("not_found", "找不到该商品编号", 404)
        rate = None if not (request.form.get("rate_bp") or "").strip() else _bp_field("rate_bp")
        svc.set_product_rate(product.id, level, rate, owner=current_user.is_owner)
    except (svc.AgentError, RateRefused) as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(url_for("admin.agent_settings"))
    db.session.commit()
    flash("商品分红比例已" + ("删除" if rate is None else "保存"), "success")
    return redirect(url_for("admin.agent_settings"))
