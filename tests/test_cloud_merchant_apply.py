"""Applying to be an ordering merchant (订货商): the H5 form (level, inviter code or the
binding the customer came with, name, phone, reason), staff approve (level and parent
validated through the merchants service) or reject with a reason, and applying again."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.cloud import merchants as svc
from app.cloud.models import OrderingMerchant
from app.core.models import StatusChange
from app.extensions import db
from tests.support.admin import csrf_token, fresh_client
from tests.support.cloud import levels, merchant
from tests.support.commissions import customer_of
from tests.support.pay import fresh

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def html(response) -> str:
    return response.get_data(as_text=True)


def signed_in(app, login_as, user):
    client = app.test_client()
    login_as(client, user)
    return client


def form(client, **values) -> dict:
    """The apply form as a customer fills it, with the page's CSRF token."""
    match = CSRF_RE.search(html(client.get("/merchant/apply")))
    assert match
    body = {"csrf_token": match[1], "level": "3", "name": "张三", "phone": "138 0000 0000"}
    return {**body, **values}


def applied(user_id: int) -> OrderingMerchant:
    db.session.rollback()
    return svc.merchant_for_user(user_id)


@pytest.fixture
def chain(make):
    """L1 → L2 (committed), and the five levels."""
    levels()
    top = merchant(make, 1, nickname="总代老王")
    return top, merchant(make, 2, top, nickname="省代老李")


def test_the_customer_centre_links_the_form(app, make, login_as, chain):
    client = signed_in(app, login_as, make.user())
    assert 'href="/merchant"' in html(client.get("/my"))
    none = html(client.get("/merchant"))
    assert "你还不是订货商" in none and 'href="/merchant/apply"' in none


def test_apply_under_the_merchant_the_customer_came_with(app, make, login_as, chain):
    _top, middle = chain
    user = customer_of(make, middle.distributor, nickname="小店主")
    client = signed_in(app, login_as, user)
    page = html(client.get("/merchant/apply"))
    # the binding is the default inviter: its code is filled in
    assert f'value="{middle.distributor.code}"' in page and "省代（2级）" in page
    filled = form(client, parent_code=middle.distributor.code, reason="开便利店")
    response = client.post("/merchant/apply", data=filled)
    assert response.status_code == 303, html(response)
    centre = html(client.get(response.headers["Location"]))
    assert "申请已提交" in centre and "正在审核中" in centre and "代客下单" not in centre
    row = applied(user.id)
    assert (row.status, row.level, row.parent_id) == ("pending", 3, middle.id)
    note = svc.application_note(row)
    assert "申请市代（3级）" in note and "张三" in note and "13800000000" in note
    assert "开便利店" in note and middle.distributor.code in note
    # While it waits, the form sends them to the centre and a second one is refused.
    assert client.get("/merchant/apply").status_code == 302
    refused = client.post("/merchant/apply", data=filled)
    assert refused.status_code == 409 and "你的申请正在审核中" in html(refused)


def test_without_a_code_the_binding_decides_else_headquarters(app, make, login_as, chain):
    _top, middle = chain
    bound = customer_of(make, middle.distributor, nickname="甲")
    client = signed_in(app, login_as, bound)
    assert client.post("/merchant/apply", data=form(client, parent_code="")).status_code == 303
    assert applied(bound.id).parent_id == middle.id
    # Bound to the L2 but applying for L2: the L2 cannot be above, so headquarters.
    same = customer_of(make, middle.distributor, nickname="乙")
    client = signed_in(app, login_as, same)
    assert (
        client.post("/merchant/apply", data=form(client, level="2", parent_code="")).status_code
        == 303
    )
    assert applied(same.id).parent_id is None
    nobody = make.user(nickname="丙")
    client = signed_in(app, login_as, nobody)
    assert client.post("/merchant/apply", data=form(client, level="1")).status_code == 303
    assert applied(nobody.id).parent_id is None


@pytest.mark.parametrize(
    ("values", "status", "message"),
    [
        ({"phone": "12345"}, 422, "请填写 11 位手机号码"),
        ({"name": ""}, 422, "请填写姓名"),
        ({"level": "9"}, 422, "等级需为 1 到 5"),
        ({"level": "x"}, 422, "等级需为 1 到 5"),
        ({"reason": "很" * 101}, 422, "申请理由最多 100 个字"),
        ({"parent_code": "NOSUCH"}, 404, "邀请码不是正常经营的订货商"),
        ({"parent_code": "L2", "level": "2"}, 422, "只能申请比它低的等级"),
    ],
)
def test_bad_applications_come_back_on_the_form(
    app, make, login_as, chain, values, status, message
):
    _top, middle = chain
    if values.get("parent_code") == "L2":
        values = {**values, "parent_code": middle.distributor.code.lower()}
    user = make.user()
    client = signed_in(app, login_as, user)
    response = client.post("/merchant/apply", data=form(client, **values))
    assert response.status_code == status
    assert message in html(response) and 'name="phone"' in html(response)
    assert applied(user.id) is None


def test_a_disabled_merchant_code_and_no_csrf_token_are_refused(app, make, login_as, chain):
    top, _middle = chain
    svc.move_merchant(top, "disabled", "staff:1", "停用")
    db.session.commit()
    client = signed_in(app, login_as, make.user())
    response = client.post("/merchant/apply", data=form(client, parent_code=top.distributor.code))
    assert response.status_code == 404
    no_token = client.post(
        "/merchant/apply", data={"level": "3", "name": "a", "phone": "13800000000"}
    )
    assert no_token.status_code == 400


def test_staff_have_no_apply_page(app, make, login_as):
    client = fresh_client(app)
    login_as(client, make.staff("boss", role="owner"))
    assert client.get("/merchant/apply").status_code == 403


# --- staff decide ------------------------------------------------------------------------


@pytest.fixture
def admin(app, make, login_as):
    client = fresh_client(app)
    login_as(client, make.staff("boss", role="owner"))
    return client


def apply(make, level: int = 3, parent=None, nickname: str = "申请人") -> OrderingMerchant:
    row = svc.apply_as_merchant(
        make.user(nickname=nickname).id,
        level,
        name="李四",
        phone="13900000000",
        reason="社区团购",
        parent_code=parent.distributor.code if parent else "",
    )
    db.session.commit()
    return row


@pytest.mark.postgresql  # closure-table SQL
def test_staff_approve_with_level_and_parent_validated(app, make, admin, chain):
    top, middle = chain
    row = apply(make, 3, middle)
    token = csrf_token(admin, "/admin/cloud/merchant-applications")
    listing = html(admin.get("/admin/cloud/merchant-applications"))
    assert f'data-application="{row.id}"' in listing and "社区团购" in listing
    assert "13900000000" in listing
    assert "审核" in html(admin.get("/admin/cloud/merchants"))
    url = f"/admin/cloud/merchants/{row.id}/approve"
    # L1 asked under an L2: refused (the parent must be higher), nothing changes.
    refused = admin.post(url, data={"csrf_token": token, "level": "1", "parent_id": str(middle.id)})
    assert refused.status_code == 422 and "上级的等级需高于" in html(refused)
    assert fresh(OrderingMerchant, row.id).status == "pending"
    missing = admin.post(url, data={"csrf_token": token, "level": "3", "parent_id": "999999"})
    assert missing.status_code == 404
    own = admin.post(url, data={"csrf_token": token, "level": "3", "parent_id": str(row.id)})
    assert own.status_code == 409 and "不能把自己设为上级" in html(own)
    # Approved as an L4 directly under the L1 (staff may change both).
    done = admin.post(url, data={"csrf_token": token, "level": "4", "parent_id": str(top.id)})
    assert done.status_code == 302
    row = fresh(OrderingMerchant, row.id)
    assert (row.status, row.level, row.parent_id) == ("active", 4, top.id)
    changes = db.session.scalars(
        select(StatusChange.to_status)
        .where(StatusChange.subject == "merchant", StatusChange.subject_id == row.id)
        .order_by(StatusChange.id)
    ).all()
    assert changes == ["pending", "level:4", f"parent:{top.id}", "active"]
    # Decided: a second approval is refused with a message, not a 500.
    again = admin.post(url, data={"csrf_token": token, "level": "4", "parent_id": str(top.id)})
    assert again.status_code == 409 and "该申请已处理" in html(again)


def test_staff_reject_with_a_reason_then_the_customer_applies_again(
    app, make, admin, login_as, chain
):
    top, _middle = chain
    row = apply(make, 2, top, nickname="再来一次")
    token = csrf_token(admin, "/admin/cloud/merchant-applications")
    url = f"/admin/cloud/merchants/{row.id}/reject"
    assert admin.post(url, data={"csrf_token": token, "reason": " "}).status_code == 422
    assert admin.post(url, data={"csrf_token": token, "reason": "资料不全"}).status_code == 302
    assert fresh(OrderingMerchant, row.id).status == "rejected"
    assert "资料不全" in html(admin.get("/admin/cloud/merchant-applications"))
    # The applicant sees why, and applies again on the same row.
    client = signed_in(app, login_as, row.distributor.user)
    response = client.get("/merchant")
    assert response.status_code == 302 and response.headers["Location"].endswith("/merchant/apply")
    page = html(client.get("/merchant/apply"))
    assert "上次申请未通过：资料不全" in page
    response = client.post("/merchant/apply", data=form(client, level="3", reason="补充了营业执照"))
    assert response.status_code == 303
    again = applied(row.distributor.user_id)
    assert (again.id, again.status, again.level) == (row.id, "pending", 3)
    assert "补充了营业执照" in svc.application_note(again)
    # The old status route cannot reject without a reason.
    bad = admin.post(
        f"/admin/cloud/merchants/{row.id}/status", data={"csrf_token": token, "to": "rejected"}
    )
    assert bad.status_code == 409
