"""Admin pages of distribution, through the real forms (CSRF on): settings, grades,
distributors, parent changes, manual rebinding, ledger with CSV, withdrawals, product rules."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from app.core.models import StatusChange
from app.distribution.admin_settings import save_grade
from app.distribution.binding import bind
from app.distribution.distributors import get_distribution_settings
from app.distribution.models import (
    Binding,
    BindingEvent,
    CommissionRule,
    Distributor,
    Grade,
    Withdrawal,
)
from app.distribution.withdrawals import request_withdrawal
from app.extensions import db
from app.ledger.balances import balances
from app.ledger.models import LedgerEntry
from tests.support.admin import csrf_token, fresh_client, text
from tests.support.commissions import configure, distributor
from tests.support.distribution import SETTINGS_FORM, money_for
from tests.support.pay import fresh


@pytest.fixture
def client(app):
    return fresh_client(app)


@pytest.fixture
def owner(make):
    return make.staff("boss", role="owner")


@pytest.fixture
def clerk(make):
    return make.staff("clerk", role="staff")


@pytest.fixture
def signed_in(client, login_as, owner):
    login_as(client, owner)
    return client


def post(client, path: str, data: dict, **kwargs):
    token = csrf_token(client, "/admin/distributors")
    return client.post(path, data={"csrf_token": token, **data}, **kwargs)


# --- settings ---------------------------------------------------------------------------


def test_settings_page_shows_the_legal_note(signed_in):
    page = text(signed_in.get("/admin/distribution/settings"))
    assert "分销设置" in page
    assert "禁止传销条例" in page
    assert "加入分销员永远免费" in page


def test_settings_are_saved_from_the_form(signed_in, app_ctx):
    response = post(signed_in, "/admin/distribution/settings", SETTINGS_FORM)
    assert response.status_code == 302, text(response)
    settings = fresh(type(get_distribution_settings()), 1)
    assert (settings.levels, settings.level1_bp, settings.level2_bp) == (2, 1000, 500)
    assert settings.withdraw_fee_bp == 60
    assert settings.withdraw_min_fen == 100
    assert settings.join_mode == "apply"
    assert settings.payout_channel == "manual"
    assert settings.self_purchase is False  # unticked box
    page = text(signed_in.get("/admin/distribution/settings"))
    assert 'value="0.6"' in page


def test_four_levels_are_refused_as_pyramid_selling(signed_in, app_ctx):
    response = post(signed_in, "/admin/distribution/settings", {**SETTINGS_FORM, "levels": "4"})
    assert response.status_code == 422
    assert "传销" in text(response)
    db.session.rollback()
    assert get_distribution_settings().levels == 2  # unchanged (the default)


def test_three_levels_are_allowed_with_a_warning(signed_in, app_ctx):
    response = post(
        signed_in,
        "/admin/distribution/settings",
        {**SETTINGS_FORM, "levels": "3", "level3_bp": "2"},
        follow_redirects=True,
    )
    page = text(response)
    assert response.status_code == 200
    assert "已选择三级分销" in page
    assert fresh(type(get_distribution_settings()), 1).levels == 3


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("level1_bp", "101", "一级佣金比例需在 0% 到 100% 之间"),
        ("level1_bp", "abc", "一级佣金比例应为数字"),
        ("level2_bp", "1.234", "最多两位小数"),
        ("withdraw_fee_bp", "-1", "提现手续费比例需在 0% 到 100% 之间"),
        ("settlement_hold_days", "-1", "结算冻结期（天）需在 0 到 365 之间"),
        ("join_mode", "pay_to_join", "成为分销员的方式只能是"),
        ("withdraw_min_fen", "1.001", "最低提现金额"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(signed_in, app_ctx, field, value, message):
    response = post(signed_in, "/admin/distribution/settings", {**SETTINGS_FORM, field: value})
    assert response.status_code == 422
    assert message in text(response)


def test_total_rates_over_half_warn(signed_in, app_ctx):
    # Above the default 30% payout cap, so the owner raises the cap too (and is warned).
    response = post(
        signed_in,
        "/admin/distribution/settings",
        {**SETTINGS_FORM, "level1_bp": "40", "level2_bp": "20", "payout_cap_bp": "70"},
        follow_redirects=True,
    )
    assert "超过商品实付金额的 50%" in text(response)
    assert "分佣上限设为 70%，超过 30%" in text(response)


def test_plain_staff_cannot_change_settings(client, login_as, clerk):
    login_as(client, clerk)
    assert client.get("/admin/distribution/settings").status_code == 403
    response = post(client, "/admin/distribution/settings", SETTINGS_FORM)
    assert response.status_code == 403


# --- grades -----------------------------------------------------------------------------


def test_grades_create_update_delete(signed_in, app_ctx, make):
    form = {
        "name": "金牌",
        "rank": "2",
        "level1_bp": "15",
        "level2_bp": "8",
        "level3_bp": "0",
        "upgrade_team_sales_fen": "1000",
        "upgrade_direct_count": "5",
    }
    assert post(signed_in, "/admin/distribution/grades", form).status_code == 302
    grade = db.session.scalar(select(Grade).where(Grade.name == "金牌"))
    assert (grade.level1_bp, grade.upgrade_team_sales_fen, grade.upgrade_direct_count) == (
        1500,
        100000,
        5,
    )

    again = post(signed_in, "/admin/distribution/grades", form)
    assert again.status_code == 409
    assert "已存在" in text(again)

    changed = post(signed_in, f"/admin/distribution/grades/{grade.id}", {**form, "level1_bp": "12"})
    assert changed.status_code == 302
    assert fresh(Grade, grade.id).level1_bp == 1200

    holder = distributor(make)
    holder.grade_id = grade.id
    db.session.commit()
    refused = post(signed_in, f"/admin/distribution/grades/{grade.id}/delete", {})
    assert refused.status_code == 409
    assert "还有 1 名分销员" in text(refused)
    holder.grade_id = None
    db.session.commit()
    assert post(signed_in, f"/admin/distribution/grades/{grade.id}/delete", {}).status_code == 302
    assert fresh(Grade, grade.id) is None


def test_grade_with_bad_rate_is_refused(signed_in, app_ctx):
    response = post(signed_in, "/admin/distribution/grades", {"name": "银牌", "level1_bp": "150"})
    assert response.status_code == 422
    assert "一级佣金比例需在 0% 到 100% 之间" in text(response)


# --- distributors -----------------------------------------------------------------------


def test_applications_are_approved_and_rejected_with_history(signed_in, app_ctx, make, owner):
    from app.distribution.distributors import create_distributor

    alice = create_distributor(make.user(nickname="申请人甲").id, None, status="pending")
    bob = create_distributor(make.user(nickname="申请人乙").id, None, status="pending")
    db.session.commit()
    listing = text(signed_in.get("/admin/distributors?status=pending"))
    assert "申请人甲" in listing and "申请人乙" in listing

    response = post(signed_in, f"/admin/distributors/{alice.id}/approve", {"back": "list"})
    assert response.status_code == 302
    assert fresh(Distributor, alice.id).status == "active"
    assert fresh(Distributor, alice.id).approved_at is not None

    no_reason = post(
        signed_in, f"/admin/distributors/{bob.id}/reject", {"reason": " "}, follow_redirects=True
    )
    assert "请填写拒绝原因" in text(no_reason)
    assert fresh(Distributor, bob.id).status == "pending"
    post(signed_in, f"/admin/distributors/{bob.id}/reject", {"reason": "资料不全"})
    assert fresh(Distributor, bob.id).status == "rejected"

    history = db.session.scalars(
        select(StatusChange).where(StatusChange.subject == "distributor").order_by(StatusChange.id)
    ).all()
    assert [(h.subject_id, h.from_status, h.to_status, h.actor) for h in history] == [
        (alice.id, "pending", "active", f"staff:{owner.id}"),
        (bob.id, "pending", "rejected", f"staff:{owner.id}"),
    ]
    assert history[1].reason == "资料不全"
    # approving twice is refused with the current status, not a 500
    again = post(signed_in, f"/admin/distributors/{alice.id}/approve", {}, follow_redirects=True)
    assert "当前状态为“正常”" in text(again)


def test_disable_and_enable(signed_in, app_ctx, make):
    d = distributor(make, nickname="小李")
    post(signed_in, f"/admin/distributors/{d.id}/disable", {"reason": "违规推广"})
    assert fresh(Distributor, d.id).status == "disabled"
    page = text(signed_in.get(f"/admin/distributors/{d.id}"))
    assert "违规推广" in page and "已停用" in page
    post(signed_in, f"/admin/distributors/{d.id}/enable", {})
    assert fresh(Distributor, d.id).status == "active"


def test_list_search_and_detail_counts(signed_in, app_ctx, make):
    top = distributor(make, nickname="团长")
    child = distributor(make, top, nickname="组员")
    distributor(make, child, nickname="孙辈")
    money_for(top, 1234)
    listing = text(signed_in.get("/admin/distributors?q=团长"))
    assert "团长" in listing and "组员" not in listing
    assert "¥12.34" in listing
    assert "团长" in text(signed_in.get(f"/admin/distributors?q={top.code}"))
    detail = text(signed_in.get(f"/admin/distributors/{top.id}"))
    assert "1 / 1 / 2" in detail  # direct / level 2 / whole team
    assert "组员" in detail


@pytest.mark.postgresql  # closure-table SQL
def test_parent_change_refuses_a_cycle_and_records_moves(signed_in, app_ctx, make, owner):
    top = distributor(make, nickname="顶层")
    middle = distributor(make, top, nickname="中层")
    low = distributor(make, middle, nickname="底层")
    other = distributor(make, nickname="另一位")

    refused = post(signed_in, f"/admin/distributors/{top.id}/parent", {"parent": str(low.id)})
    assert refused.status_code == 409
    assert "会形成循环" in text(refused)
    assert fresh(Distributor, top.id).parent_id is None

    moved = post(signed_in, f"/admin/distributors/{middle.id}/parent", {"parent": other.code})
    assert moved.status_code == 302
    assert fresh(Distributor, middle.id).parent_id == other.id
    from app.distribution.distributors import ancestors

    assert [a for _d, a in ancestors(low.id, 3)] == [middle.id, other.id]

    to_top = post(signed_in, f"/admin/distributors/{middle.id}/parent", {"parent": ""})
    assert to_top.status_code == 302
    assert fresh(Distributor, middle.id).parent_id is None
    audit = db.session.scalars(
        select(StatusChange).where(StatusChange.subject == "dist_parent").order_by(StatusChange.id)
    ).all()
    assert [(a.subject_id, a.from_status, a.to_status, a.actor) for a in audit] == [
        (middle.id, str(top.id), str(other.id), f"staff:{owner.id}"),
        (middle.id, str(other.id), "none", f"staff:{owner.id}"),
    ]
    unknown = post(signed_in, f"/admin/distributors/{low.id}/parent", {"parent": "NOSUCH"})
    assert unknown.status_code == 422
    assert "找不到分销员" in text(unknown)


# --- bindings ---------------------------------------------------------------------------


@pytest.mark.postgresql  # closure-table SQL
def test_manual_rebind_overrides_protection_and_is_audited(signed_in, app_ctx, make, owner):
    configure(protection_days=30)
    first = distributor(make, nickname="先来的")
    second = distributor(make, nickname="后来的")
    fan = make.user(nickname="粉丝王")
    bind(fan.id, first, "link")
    db.session.commit()
    # a link cannot take the protected customer over...
    assert bind(fan.id, second, "link").distributor_id == first.id
    db.session.commit()

    response = post(
        signed_in,
        "/admin/distribution/bindings",
        {"user_id": str(fan.id), "distributor": second.code},
    )
    assert response.status_code == 302
    binding = db.session.scalar(select(Binding).where(Binding.user_id == fan.id))
    db.session.refresh(binding)
    assert (binding.distributor_id, binding.source) == (second.id, "staff")
    event = db.session.scalar(
        select(BindingEvent).where(BindingEvent.user_id == fan.id).order_by(BindingEvent.id.desc())
    )
    assert (event.action, event.source, event.actor) == ("rebind", "staff", f"staff:{owner.id}")
    assert event.previous_distributor_id == first.id
    page = text(signed_in.get(f"/admin/distribution/bindings?user={fan.id}"))
    assert "商家手动" in page and "改绑" in page and "粉丝王" in page
    assert "粉丝王" in text(signed_in.get("/admin/distribution/bindings?q=粉丝"))


@pytest.mark.postgresql  # closure-table SQL
def test_manual_rebind_refuses_self_and_cycles(signed_in, app_ctx, make):
    top = distributor(make, nickname="上级")
    below = distributor(make, top, nickname="下级")
    cycle = post(
        signed_in,
        "/admin/distribution/bindings",
        {"user_id": str(top.user_id), "distributor": str(below.id)},
    )
    assert cycle.status_code == 422
    assert "循环" in text(cycle)
    itself = post(
        signed_in,
        "/admin/distribution/bindings",
        {"user_id": str(top.user_id), "distributor": str(top.id)},
    )
    assert itself.status_code == 422
    assert "不能绑定到自己" in text(itself)
    assert db.session.scalar(select(Binding)) is None


# --- ledger -----------------------------------------------------------------------------


@pytest.mark.postgresql  # money, ledger, orders or stock
def test_ledger_filters_and_csv(signed_in, app_ctx, make):
    alice = distributor(make, nickname='=HYPERLINK("http://x")')
    bob = distributor(make, nickname="Bob")
    db.session.add_all(
        [
            LedgerEntry(
                distributor_id=alice.id,
                kind="task_reward",
                amount_fen=500,
                state="settled",
                note="+1 奖励",
            ),
            LedgerEntry(
                distributor_id=alice.id, kind="invite_reward", amount_fen=300, state="pending"
            ),
            LedgerEntry(distributor_id=bob.id, kind="task_reward", amount_fen=700, state="pending"),
        ]
    )
    db.session.commit()
    everything = text(signed_in.get("/admin/distribution/ledger"))
    assert "¥15.00" in everything  # total of all three
    only_alice = text(signed_in.get(f"/admin/distribution/ledger?distributor={alice.code}"))
    assert "¥8.00" in only_alice and "Bob" not in only_alice
    pending_tasks = text(signed_in.get("/admin/distribution/ledger?kind=task_reward&state=pending"))
    assert "共 1 条" in pending_tasks and "¥7.00" in pending_tasks
    bad_day = signed_in.get("/admin/distribution/ledger?from=2025-13-01")
    assert bad_day.status_code == 200 and "日期格式" in text(bad_day)

    export = signed_in.get(f"/admin/distribution/ledger/export.csv?distributor={alice.id}")
    assert export.status_code == 200
    assert export.mimetype == "text/csv"
    body = export.get_data(as_text=True)
    assert body.startswith("\ufeff明细编号")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert len(rows) == 3
    assert all(row[3].startswith("'=HYPERLINK") for row in rows[1:])  # no formula runs
    assert {row[6] for row in rows[1:]} == {"5.00", "3.00"}
    assert any(row[10] == "'+1 奖励" for row in rows[1:])


# --- withdrawals ------------------------------------------------------------------------


@pytest.mark.postgresql  # money, ledger, orders or stock
def test_manual_withdrawal_approve_and_mark_paid(signed_in, app_ctx, make):
    configure(payout_channel="manual", withdraw_fee_bp=100)
    d = distributor(make, nickname="提现人")
    money_for(d, 10000)
    w = request_withdrawal(d, 5000)
    db.session.commit()
    listing = text(signed_in.get("/admin/distribution/withdrawals?status=requested"))
    assert "提现人" in listing and "¥50.00" in listing and "到账 ¥49.50" in listing

    approved = post(
        signed_in, f"/admin/distribution/withdrawals/{w.id}/approve", {}, follow_redirects=True
    )
    assert "请线下打款" in text(approved)
    assert fresh(Withdrawal, w.id).status == "approved"
    post(signed_in, f"/admin/distribution/withdrawals/{w.id}/paid", {"note": "银行流水 123"})
    paid = fresh(Withdrawal, w.id)
    assert (paid.status, paid.review_note) == ("paid", "银行流水 123")
    assert balances(d.id).withdrawn_fen == 5000
    assert balances(d.id).available_fen == 5000


@pytest.mark.postgresql  # money, ledger, orders or stock
def test_withdrawal_reject_returns_the_money(signed_in, app_ctx, make):
    configure(payout_channel="manual")
    d = distributor(make)
    money_for(d, 3000)
    w = request_withdrawal(d, 3000)
    db.session.commit()
    assert balances(d.id).available_fen == 0
    no_reason = post(
        signed_in,
        f"/admin/distribution/withdrawals/{w.id}/reject",
        {"reason": ""},
        follow_redirects=True,
    )
    assert "请填写拒绝原因" in text(no_reason)
    post(signed_in, f"/admin/distribution/withdrawals/{w.id}/reject", {"reason": "信息不符"})
    assert fresh(Withdrawal, w.id).status == "rejected"
    assert balances(d.id).available_fen == 3000
    again = post(
        signed_in, f"/admin/distribution/withdrawals/{w.id}/approve", {}, follow_redirects=True
    )
    assert "当前状态为“已拒绝”" in text(again)


@pytest.mark.postgresql  # money, ledger, orders or stock
def test_wechat_withdrawal_approval_goes_to_the_stand_in(signed_in, app_ctx, make, sandbox):
    configure(payout_channel="wechat")
    d = distributor(make, nickname="微信提现")
    money_for(d, 2000)
    w = request_withdrawal(d, 2000)
    db.session.commit()
    response = post(
        signed_in, f"/admin/distribution/withdrawals/{w.id}/approve", {}, follow_redirects=True
    )
    assert "等待分销员在微信确认收款" in text(response)
    done = fresh(Withdrawal, w.id)
    assert done.status == "awaiting_confirm"
    assert done.transfer_bill_no and done.package_info


# --- product and SKU commission rules ---------------------------------------------------


def test_product_and_sku_rules_on_the_product_page(signed_in, app_ctx, make):
    product = make.product("分佣商品", specs={"颜色": ["红", "蓝"]})
    red = product.skus[0]
    page = text(signed_in.get(f"/admin/products/{product.id}/edit"))
    assert "分销佣金规则" in page and "未设置" in page
    url = f"/admin/products/{product.id}/commission-rule"

    saved = post(
        signed_in,
        url,
        {"sku_id": "", "mode": "percent", "level1": "12.5", "level2": "5", "level3": ""},
        follow_redirects=True,
    )
    assert "商品佣金规则已保存" in text(saved)
    post(signed_in, url, {"sku_id": str(red.id), "mode": "fixed", "level1": "3", "level2": "1"})
    rules = {r.sku_id: r for r in db.session.scalars(select(CommissionRule))}
    assert (rules[None].mode, rules[None].level1, rules[None].level2) == ("percent", 1250, 500)
    assert (rules[red.id].mode, rules[red.id].level1, rules[red.id].level2) == ("fixed", 300, 100)
    page = text(signed_in.get(f"/admin/products/{product.id}/edit"))
    assert "按比例 一级 12.5%" in page and "固定金额 一级 ¥3.00" in page

    bad = post(
        signed_in, url, {"sku_id": "", "mode": "percent", "level1": "150"}, follow_redirects=True
    )
    assert "比例不能超过 100%" in text(bad)
    other_sku = make.product().skus[0]
    wrong = post(
        signed_in, url, {"sku_id": str(other_sku.id), "mode": "none"}, follow_redirects=True
    )
    assert "不属于这个商品" in text(wrong)

    post(signed_in, url, {"sku_id": str(red.id), "action": "delete"})
    post(signed_in, url, {"sku_id": "", "mode": "none"})
    rules = list(db.session.scalars(select(CommissionRule)))
    assert [(r.sku_id, r.mode) for r in rules] == [(None, "none")]


@pytest.mark.postgresql  # unique constraints
def test_grade_service_name_is_trimmed_and_unique(app_ctx):
    from app.distribution.admin_input import SettingsError

    save_grade({"name": " 银牌 "})
    db.session.commit()
    with pytest.raises(SettingsError) as err:
        save_grade({"name": "银牌"})
    assert err.value.status == 409


@pytest.mark.postgresql  # money, ledger, orders or stock
def test_manual_withdrawal_can_be_cancelled_after_approval(signed_in, app_ctx, make):
    configure(payout_channel="manual")
    d = distributor(make)
    money_for(d, 2000)
    w = request_withdrawal(d, 2000)
    db.session.commit()
    post(signed_in, f"/admin/distribution/withdrawals/{w.id}/approve", {})
    page = text(signed_in.get("/admin/distribution/withdrawals"))
    assert "标记已打款" in page and "撤销" in page
    post(signed_in, f"/admin/distribution/withdrawals/{w.id}/cancel", {})
    assert fresh(Withdrawal, w.id).status == "failed"
    assert balances(d.id).available_fen == 2000
