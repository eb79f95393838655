"""Every admin URL refuses anonymous visitors, customers and (where owner-only) plain staff."""

from __future__ import annotations

from app.admin.decorators import ROLE_ATTR
from app.extensions import db
from tests.support.access import admin_rules, client, url_for_rule, world  # noqa: F401
from tests.support.admin import csrf_token, text


def owner_only(app, rule) -> bool:
    return getattr(app.view_functions[rule.endpoint], ROLE_ATTR, None) == "owner"


def test_there_are_admin_urls_to_check(app):
    endpoints = {rule.endpoint for rule, _ in admin_rules(app)}
    assert {
        "admin.dashboard",
        "admin.products",
        "admin.product_edit",
        "admin.staff_list",
    } <= endpoints


def test_every_admin_view_declares_who_may_use_it(app):
    for rule, _ in admin_rules(app):
        role = getattr(app.view_functions[rule.endpoint], ROLE_ATTR, None)
        assert role in ("staff", "owner"), f"{rule.endpoint} has no staff_required/owner_required"


def test_anonymous_is_sent_to_login_everywhere(app, client, world):  # noqa: F811
    token = csrf_token(client, "/admin/login")
    for rule, method in admin_rules(app):
        url = url_for_rule(app, rule, world["args"])
        if method == "GET":
            response = client.get(url)
        else:
            response = client.open(url, method=method, data={"csrf_token": token})
        assert response.status_code == 302, (method, url, response.status_code)
        location = response.headers["Location"]
        assert location.startswith("/admin/login?next="), (method, url, location)


def test_anonymous_login_redirect_keeps_the_page(client, world):  # noqa: F811
    response = client.get("/admin/products?q=abc")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/login?next=/admin/products?q%3Dabc"


def test_customer_gets_a_chinese_403_everywhere(app, client, login_as, world):  # noqa: F811
    login_as(client, world["customer"])
    token = csrf_token(client, "/admin/login")  # the login page is open to everyone
    for rule, method in admin_rules(app):
        url = url_for_rule(app, rule, world["args"])
        data = {"csrf_token": token} if method != "GET" else None
        response = client.open(url, method=method, data=data)
        assert response.status_code == 403, (method, url, response.status_code)
        assert "仅限商家员工" in text(response)


def test_staff_can_open_every_admin_page(app, client, login_as, world):  # noqa: F811
    login_as(client, world["staff"])
    checked = 0
    for rule, method in admin_rules(app):
        if method != "GET":
            continue
        url = url_for_rule(app, rule, world["args"])
        response = client.get(url)
        expected = 403 if owner_only(app, rule) else 200
        assert response.status_code == expected, (url, response.status_code)
        checked += 1
    assert checked >= 5


def test_owner_can_open_every_admin_page(app, client, login_as, world):  # noqa: F811
    login_as(client, world["owner"])
    for rule, method in admin_rules(app):
        if method == "GET":
            url = url_for_rule(app, rule, world["args"])
            assert client.get(url).status_code == 200, url


def test_plain_staff_is_refused_owner_only_posts(app, client, login_as, world):  # noqa: F811
    login_as(client, world["staff"])
    token = csrf_token(client, "/admin/")
    owner_posts = [(r, m) for r, m in admin_rules(app) if m == "POST" and owner_only(app, r)]
    assert owner_posts, "staff management should be owner-only"
    for rule, _method in owner_posts:
        url = url_for_rule(app, rule, world["args"])
        response = client.post(
            url,
            data={
                "csrf_token": token,
                "username": "sneaky",
                "password": "password123",
                "role": "owner",
            },
        )
        assert response.status_code == 403, url
        assert "只有店主" in text(response)


def test_deactivated_staff_is_refused_and_signed_out(app, client, login_as, world):  # noqa: F811
    staff = world["staff"]
    login_as(client, staff)
    assert client.get("/admin/").status_code == 200
    staff.active = False
    db.session.commit()
    response = client.get("/admin/")
    assert response.status_code == 403
    assert "已停用" in text(response)
    # Signed out: the next visit is treated as anonymous.
    assert client.get("/admin/").status_code == 302


def test_unknown_admin_url_is_404_not_500(client, login_as, world):  # noqa: F811
    login_as(client, world["staff"])
    assert client.get("/admin/products/999999/edit").status_code == 404
    assert client.get("/admin/no-such-page").status_code == 404
