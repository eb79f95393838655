"""Staff sessions live on the server: a cookie kept after log-out, a password change,
deactivation or "sign out everywhere" opens no admin page, and sessions expire (absolute
and idle). The pages list the devices signed in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask_login.utils import encode_cookie
from sqlalchemy import select

from app.accounts.models import Staff, StaffSession
from app.core.models import AuditLog
from app.core.time import utcnow
from app.extensions import db
from tests.support.admin import csrf_token, fresh_client, post, sign_in, text

WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
IPHONE_WECHAT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50"
)


@pytest.fixture
def owner(make):
    return make.staff("boss", password="owner-password", role="owner")


@pytest.fixture
def clerk(make):
    return make.staff("clerk", password="clerk-password")


def signed_in(app, username: str, password: str, user_agent: str = "pytest"):
    """A new browser (its own cookie jar) signed in through the login form."""
    client = fresh_client(app)
    client.environ_base["HTTP_USER_AGENT"] = user_agent
    assert sign_in(client, username, password).status_code == 302
    assert client.get("/admin/").status_code == 200
    return client


def copy_of(app, client):
    """Another browser holding a copy of ``client``'s session cookie (a replay)."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    thief = fresh_client(app)
    thief.set_cookie("session", cookie.value)
    return thief


def refused(response) -> bool:
    """Sent to the login form, as an anonymous visitor is."""
    return response.status_code == 302 and response.headers["Location"].startswith("/admin/login")


def sessions_of(staff_id: int) -> list[StaffSession]:
    db.session.expire_all()
    query = select(StaffSession).where(StaffSession.staff_id == staff_id)
    return list(db.session.scalars(query.order_by(StaffSession.id)))


def audit_rows(action: str) -> list[AuditLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditLog).where(AuditLog.action == action)))


# --- log-out, password, deactivation ----------------------------------------------------


def test_a_cookie_kept_after_log_out_opens_no_admin_page(app, clerk):
    browser = signed_in(app, "clerk", "clerk-password")
    stolen = copy_of(app, browser)
    assert stolen.get("/admin/products").status_code == 200  # the copy works while signed in
    token = csrf_token(browser, "/admin/")
    assert browser.post("/admin/logout", data={"csrf_token": token}).status_code == 302

    for path in ("/admin/", "/admin/products", "/admin/orders", "/admin/account"):
        assert refused(stolen.get(path)), path
    assert stolen.post("/admin/categories", data={"name": "x"}).status_code in (302, 400)
    (row,) = sessions_of(clerk.id)
    assert row.ended_at is not None and row.ended_reason == "logout"


def test_the_cookie_carries_a_session_token_not_just_the_staff_id(app, clerk):
    # A cookie naming the staff id (what every staff cookie held before) is not enough.
    forged = fresh_client(app)
    with forged.session_transaction() as session:
        session["_user_id"] = clerk.get_id()
        session["_fresh"] = True
    assert refused(forged.get("/admin/"))
    # Nor is Flask-Login's remember-me cookie, signed with the app's own key.
    with app.test_request_context():
        remember = encode_cookie(clerk.get_id())
    returning = fresh_client(app)
    returning.set_cookie("remember_token", remember)
    assert refused(returning.get("/admin/"))


def test_a_password_reset_by_the_owner_ends_every_session_of_that_member(app, owner, clerk):
    laptop = signed_in(app, "clerk", "clerk-password", WINDOWS_CHROME)
    phone = signed_in(app, "clerk", "clerk-password", IPHONE_WECHAT)
    boss = signed_in(app, "boss", "owner-password")

    response = post(boss, f"/admin/staff/{clerk.id}/password", {"password": "new-clerk-pass"})
    assert response.status_code == 302
    assert "已重置“clerk”的密码" in text(boss.get("/admin/staff"))
    assert refused(laptop.get("/admin/")) and refused(phone.get("/admin/"))
    assert {row.ended_reason for row in sessions_of(clerk.id)} == {"password_changed"}
    assert boss.get("/admin/").status_code == 200  # the owner's own session is untouched
    assert sign_in(fresh_client(app), "clerk", "clerk-password").status_code == 401
    assert sign_in(fresh_client(app), "clerk", "new-clerk-pass").status_code == 302
    (row,) = audit_rows("staff.password_reset")
    assert row.actor == owner.get_id() and row.subject_id == str(clerk.id)
    assert row.before == {} and row.after == {"sessions_ended": 2}  # never the hash


def test_a_password_reset_is_refused_when_too_short_or_for_oneself(app, owner, clerk):
    browser = signed_in(app, "clerk", "clerk-password")
    boss = signed_in(app, "boss", "owner-password")
    short = post(boss, f"/admin/staff/{clerk.id}/password", {"password": "short"})
    assert short.status_code == 422 and "密码至少 8 位" in text(short)
    own = post(boss, f"/admin/staff/{owner.id}/password", {"password": "whatever-123"})
    assert own.status_code == 422 and "我的账号" in text(own)
    assert browser.get("/admin/").status_code == 200
    assert (
        post(browser, f"/admin/staff/{owner.id}/password", {"password": "x" * 10}).status_code
        == 403
    )


def test_create_staff_resetting_a_password_ends_the_sessions(app, runner, clerk):
    browser = signed_in(app, "clerk", "clerk-password")
    result = runner.invoke(args=["create-staff", "clerk", "--password", "reset-by-cli"])
    assert result.exit_code == 0, result.output
    assert refused(browser.get("/admin/"))
    assert sessions_of(clerk.id)[0].ended_reason == "password_changed"
    assert signed_in(app, "clerk", "reset-by-cli").get("/admin/").status_code == 200


def test_deactivation_ends_the_sessions_and_is_audited(app, owner, clerk):
    browser = signed_in(app, "clerk", "clerk-password")
    stolen = copy_of(app, browser)
    boss = signed_in(app, "boss", "owner-password")
    assert post(boss, f"/admin/staff/{clerk.id}/active", {"active": "0"}).status_code == 302
    assert refused(browser.get("/admin/")) and refused(stolen.get("/admin/"))
    assert sessions_of(clerk.id)[0].ended_reason == "deactivated"
    (row,) = audit_rows("staff.deactivate")
    assert row.before == {"active": True}
    assert row.after == {"active": False, "sessions_ended": 1}


def test_changing_ones_own_password_keeps_this_device_and_ends_the_others(app, clerk):
    here = signed_in(app, "clerk", "clerk-password")
    there = signed_in(app, "clerk", "clerk-password")
    wrong = post(
        here, "/admin/account/password", {"current": "not-it", "password": "brand-new-pass"}
    )
    assert wrong.status_code == 422 and "当前密码不正确" in text(wrong)
    assert there.get("/admin/").status_code == 200

    response = post(
        here, "/admin/account/password", {"current": "clerk-password", "password": "brand-new-pass"}
    )
    assert response.status_code == 302
    assert here.get("/admin/").status_code == 200
    assert refused(there.get("/admin/"))
    db.session.expire_all()
    assert db.session.get(Staff, clerk.id).check_password("brand-new-pass")
    (row,) = audit_rows("staff.password_change")
    assert row.after == {"sessions_ended": 1}


# --- lifetimes ----------------------------------------------------------------------------


def _age(staff_id: int, *, created: timedelta = timedelta(0), seen: timedelta = timedelta(0)):
    """Move a member's sessions back in time (instead of waiting)."""
    for row in sessions_of(staff_id):
        row.created_at = row.created_at - created
        row.last_seen_at = row.last_seen_at - seen
    db.session.commit()


def test_a_session_ends_twelve_hours_after_sign_in_even_when_busy(app, clerk):
    browser = signed_in(app, "clerk", "clerk-password")
    _age(clerk.id, created=timedelta(hours=11, minutes=58))
    assert browser.get("/admin/").status_code == 200  # still inside the 12 hours
    _age(clerk.id, created=timedelta(minutes=3))  # busy all along: last seen just now
    assert refused(browser.get("/admin/"))
    # The stale sign-in is dropped from the cookie; signing in again works.
    with browser.session_transaction() as session:
        assert "_user_id" not in session
    assert sign_in(browser, "clerk", "clerk-password").status_code == 302
    assert browser.get("/admin/").status_code == 200


def test_a_session_ends_after_two_idle_hours(app, clerk):
    browser = signed_in(app, "clerk", "clerk-password")
    _age(clerk.id, seen=timedelta(hours=1, minutes=58))
    assert browser.get("/admin/").status_code == 200  # and this request counts as activity
    (row,) = sessions_of(clerk.id)
    assert utcnow() - row.last_seen_at < timedelta(minutes=1)
    _age(clerk.id, seen=timedelta(hours=2, minutes=1))
    assert refused(browser.get("/admin/"))


@pytest.mark.postgresql  # conditional update
def test_last_seen_is_written_at_most_once_a_minute(app, clerk):
    browser = signed_in(app, "clerk", "clerk-password")
    _age(clerk.id, seen=timedelta(seconds=20))
    before = sessions_of(clerk.id)[0].last_seen_at
    assert browser.get("/admin/").status_code == 200
    assert sessions_of(clerk.id)[0].last_seen_at == before  # 20 s old: left alone
    _age(clerk.id, seen=timedelta(minutes=2))
    assert browser.get("/admin/").status_code == 200
    assert utcnow() - sessions_of(clerk.id)[0].last_seen_at < timedelta(seconds=30)


# --- the lists and "sign out everywhere" --------------------------------------------------


def test_the_staff_page_lists_the_devices_signed_in(app, owner, clerk):
    signed_in(app, "clerk", "clerk-password", WINDOWS_CHROME)
    signed_in(app, "clerk", "clerk-password", IPHONE_WECHAT)
    ended = signed_in(app, "clerk", "clerk-password", "Mozilla/5.0 (X11; Linux x86_64) Firefox/1")
    post(ended, "/admin/logout")
    boss = signed_in(app, "boss", "owner-password")
    page = text(boss.get("/admin/staff"))
    assert "登录中的设备" in page and "退出所有设备" in page
    assert "Chrome · Windows" in page and "微信 · iPhone" in page
    assert "Firefox" not in page  # an ended session is not listed
    assert "127.0.0.1" in page and "当前设备" in page  # the owner's own row marks this one
    assert f"/admin/staff/{clerk.id}/sign-out-everywhere" in page


def test_the_owner_signs_a_member_out_everywhere(app, owner, clerk):
    laptop = signed_in(app, "clerk", "clerk-password")
    phone = signed_in(app, "clerk", "clerk-password")
    boss = signed_in(app, "boss", "owner-password")
    response = post(boss, f"/admin/staff/{clerk.id}/sign-out-everywhere", token_from="/admin/staff")
    assert response.status_code == 302
    assert "已让“clerk”退出所有设备（2 个）" in text(boss.get("/admin/staff"))
    assert refused(laptop.get("/admin/")) and refused(phone.get("/admin/"))
    assert boss.get("/admin/").status_code == 200
    (row,) = audit_rows("staff.sign_out_everywhere")
    assert row.actor == owner.get_id() and row.subject == "staff"
    assert row.subject_id == str(clerk.id)
    assert row.before == {"active_sessions": 2} and row.after == {"active_sessions": 0}
    # A clerk may not sign anyone else out.
    clerk_again = signed_in(app, "clerk", "clerk-password")
    forbidden = post(clerk_again, f"/admin/staff/{owner.id}/sign-out-everywhere")
    assert forbidden.status_code == 403
    assert boss.get("/admin/").status_code == 200


def test_a_member_signs_themself_out_everywhere_from_my_account(app, clerk):
    here = signed_in(app, "clerk", "clerk-password", WINDOWS_CHROME)
    there = signed_in(app, "clerk", "clerk-password", IPHONE_WECHAT)
    page = text(here.get("/admin/account"))
    assert "我的账号" in page and "Chrome · Windows" in page and "微信 · iPhone" in page
    assert "当前设备" in page and "退出所有设备" in page
    response = post(here, "/admin/account/sign-out-everywhere", token_from="/admin/account")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/login"
    assert refused(here.get("/admin/")) and refused(there.get("/admin/"))
    (row,) = audit_rows("staff.sign_out_everywhere")
    assert row.actor == clerk.get_id() and row.before == {"active_sessions": 2}


def test_customers_still_sign_in_and_keep_their_session(app, make, login_as):
    customer = make.user()
    client = fresh_client(app)
    login_as(client, customer)
    assert client.get("/api/v1/me").status_code == 200
    assert client.get("/api/v1/me").get_json()["id"] == customer.id


@pytest.mark.browser
def test_staff_page_in_the_browser_signs_a_member_out_everywhere(
    app, desk, live_server, owner, clerk, artifacts
):
    phone = signed_in(app, "clerk", "clerk-password", IPHONE_WECHAT)
    signed_in(app, "clerk", "clerk-password", WINDOWS_CHROME)
    base = live_server.url
    desk.goto(f"{base}/admin/login")
    desk.fill("#username", "boss")
    desk.fill("#password", "owner-password")
    desk.click("button[type=submit]")
    desk.wait_for_url(f"{base}/admin/")
    desk.goto(f"{base}/admin/staff")
    desk.click("summary:has-text('重置密码')")  # the reset form opens in its row
    assert desk.locator("details[open] input[type=password]").is_visible()
    desk.screenshot(path=str(artifacts / "admin-staff-sessions.png"), full_page=True)
    group = desk.locator(".session-group", has_text="clerk")
    assert group.locator("tbody tr").count() == 2
    group.locator("button:has-text('退出所有设备')").click()  # the confirm is accepted
    desk.wait_for_selector("text=已让“clerk”退出所有设备（2 个）")
    assert desk.locator(".session-group", has_text="clerk").count() == 0
    assert refused(phone.get("/admin/"))
    desk.goto(f"{base}/admin/account")
    assert "当前设备" in desk.content()
    desk.screenshot(path=str(artifacts / "admin-account.png"), full_page=True)
