"""Security headers on a response of each kind, templates that need no inline script or
style, and pages of each kind in a real browser with no Content-Security-Policy violation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from app.accounts.models import User
from app.distribution.distributors import create_distributor
from app.extensions import db
from tests.support.browser import wait_until

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
JWEIXIN = "https://res.wx.qq.com/open/js/jweixin-1.6.0.js"

# Collects the violations a page reports to itself (the fixtures also watch the console).
WATCH_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""

# What jweixin does for the share card, served as if from res.wx.qq.com.
FAKE_JWEIXIN = """
(() => {
  const calls = { config: [], appMessage: [], timeline: [] };
  const ready = [];
  window.__wxCalls = calls;
  window.wx = {
    config(options) {
      calls.config.push(options);
      setTimeout(() => ready.forEach((cb) => cb()), 0);
    },
    ready(cb) { ready.push(cb); },
    error() {},
    updateAppMessageShareData(options) { calls.appMessage.push(options); },
    updateTimelineShareData(options) { calls.timeline.push(options); },
  };
})();
"""


def directives(policy: str) -> dict[str, list[str]]:
    """A CSP header as {directive: [sources]}."""
    parsed = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


def assert_common(response) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


# --- headers over HTTP --------------------------------------------------------------------


def test_every_kind_of_response_says_nosniff_and_referrer_policy(client, make):
    product = make.product()
    make.staff("boss", password="boss-password", role="owner")
    responses = [
        client.get("/"),
        client.get(f"/product/{product.id}"),
        client.get("/no-such-page"),
        client.get("/admin/login"),
        client.get("/admin/products"),  # a redirect to sign in
        client.get("/api/v1/products"),
        client.get("/api/v1/orders"),  # a JSON 401
        client.get("/static/css/shop.css"),
        client.get("/healthz"),
        client.get("/wechat"),  # WeChat's door, refused without a signature
        client.post("/pay/notify", data=b"{}"),
    ]
    for response in responses:
        assert_common(response)
        assert "Strict-Transport-Security" not in response.headers  # http://127.0.0.1
        response.close()


def test_admin_pages_allow_only_the_sites_own_resources_and_no_frames(client, make, login_as):
    login_as(client, make.staff(role="owner"))
    for path in ("/admin/login", "/admin/", "/admin/products", "/admin/no-such-page"):
        response = client.get(path)
        assert_common(response)
        assert response.headers["X-Frame-Options"] == "DENY"
        policy = directives(response.headers["Content-Security-Policy"])
        assert policy["default-src"] == ["'self'"]
        assert policy["script-src"] == ["'self'"]  # no inline script, no other host
        assert policy["style-src"] == ["'self'"]
        assert policy["img-src"] == ["'self'", "data:", "blob:"]
        assert policy["object-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
        assert "'unsafe-eval'" not in response.headers["Content-Security-Policy"]


def test_shop_pages_let_wechats_js_sdk_and_avatars_load(client, make, app):
    product = make.product()
    for path in ("/", f"/product/{product.id}", "/login?next=/my"):
        response = client.get(path)
        assert_common(response)
        assert "X-Frame-Options" not in response.headers  # shop pages may be framed by us
        header = response.headers["Content-Security-Policy"]
        policy = directives(header)
        assert policy["script-src"] == ["'self'", "https://res.wx.qq.com", "https://res2.wx.qq.com"]
        assert policy["style-src"] == ["'self'"]
        assert {"https://thirdwx.qlogo.cn", "https://wx.qlogo.cn"} <= set(policy["img-src"])
        # The stand-in plays WeChat in tests, and its avatars are WeChat's avatars here.
        assert app.config["WECHAT_API_BASE"] in policy["img-src"]
        assert policy["frame-ancestors"] == ["'self'"]
        assert "'unsafe-inline'" not in header and "'unsafe-eval'" not in header


def test_api_answers_carry_a_policy_that_allows_nothing(client):
    response = client.get("/api/v1/products")
    assert (
        response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    )


def test_a_nonce_used_by_a_template_is_in_that_requests_policy_only(app):
    from flask import render_template_string

    with app.test_request_context("/admin/"):
        html = render_template_string('<script nonce="{{ csp_nonce() }}">1</script>')
        nonce = re.search(r'nonce="([^"]+)"', html)[1]
        response = app.process_response(app.make_response(html))
        policy = directives(response.headers["Content-Security-Policy"])
        assert policy["script-src"] == ["'self'", f"'nonce-{nonce}'"]
    with app.test_request_context("/admin/"):
        again = render_template_string("{{ csp_nonce() }}")
    assert again != nonce and len(nonce) >= 22


def test_hsts_when_the_public_url_is_https(app):
    https_app = create_app(
        {
            "ENV_NAME": "test",
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
            "PUBLIC_BASE_URL": "https://shop.example.com",
        }
    )
    for path in ("/static/css/shop.css", "/admin/login", "/api/v1/openapi.json"):
        response = https_app.test_client().get(path)
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000", path
        assert_common(response)
        if not path.startswith("/api/"):  # http:// avatars are fetched over https
            policy = directives(response.headers["Content-Security-Policy"])
            assert policy["upgrade-insecure-requests"] == []
        response.close()


# --- templates ----------------------------------------------------------------------------


def shop_templates() -> list[Path]:
    """Every template of the shop (the WeChat stand-in's pages are a separate app)."""
    return [p for p in TEMPLATES.rglob("*.html") if "sandbox" not in p.relative_to(TEMPLATES).parts]


def test_templates_have_no_inline_script_style_or_handler():
    """CSP refuses inline code: scripts and styles live in static/, data rides in JSON blocks."""
    problems = []
    for path in shop_templates():
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(TEMPLATES)
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" in tag or 'type="application/json"' in tag or "csp_nonce()" in tag:
                continue
            problems.append(f"{name}: inline {tag}")
        for tag in re.findall(r"<style\b[^>]*>", text):
            if "csp_nonce()" not in tag:
                problems.append(f"{name}: inline {tag}")
        for attribute in re.findall(r"<[a-zA-Z][^>]*?\s(on[a-z]+|style)\s*=", text):
            problems.append(f"{name}: {attribute}= attribute")
        if re.search(r"javascript:", text, re.IGNORECASE):
            problems.append(f"{name}: javascript: URL")
    assert problems == []


# --- in the browser -----------------------------------------------------------------------


def sign_in_on_stand_in(page, sandbox, nickname: str) -> None:
    page.wait_for_url(f"{sandbox.url}/connect/oauth2/authorize?**")
    page.locator("label.fan", has_text=nickname).click()
    page.locator("button[name=action][value=allow]").click()  # 确认登录 or 允许


@pytest.mark.browser
def test_shop_pages_load_jweixin_and_avatars_with_no_violation(make, page, live_server, sandbox):
    """A product page inside WeChat loads jweixin from res.wx.qq.com and sets the share
    card; the distributor's own pages show the WeChat avatar; nothing is refused."""
    product = make.product(title="手工陶瓷茶杯", price_fen=1234)
    base = live_server.url
    asked = []

    def serve_jweixin(route):
        asked.append(route.request.url)
        route.fulfill(status=200, content_type="application/javascript", body=FAKE_JWEIXIN)

    page.route("https://res.wx.qq.com/**", serve_jweixin)
    page.add_init_script(WATCH_VIOLATIONS)
    response = page.goto(f"{base}/product/{product.id}")
    assert "https://res.wx.qq.com" in response.headers["content-security-policy"]
    wait_until(page, "window.__wxCalls && window.__wxCalls.timeline.length > 0")
    assert asked == [JWEIXIN]
    assert page.evaluate("window.__csp") == []

    page.goto(f"{base}/login?next=/my")
    sign_in_on_stand_in(page, sandbox, "张小凡")
    page.wait_for_url(f"{base}/my")
    db.session.rollback()
    fan = sandbox.server.app.extensions["wechat_sandbox"].fan_for_nickname("张小凡")
    user = db.session.scalar(select(User).where(User.openid == fan.openid))
    # The avatar WeChat gives (snsapi_userinfo, or the fan list): on the stand-in's host here.
    user.avatar_url = f"{sandbox.url}/_sandbox/avatar/{fan.openid}.svg"
    create_distributor(user.id, None)
    db.session.commit()
    pages = ["/my", "/cart", "/orders", "/categories", "/addresses/new", "/distributor"]
    pages += ["/distributor/team", "/distributor/tasks", "/distributor/leaderboards"]
    pages += ["/distributor/withdraw", "/agent/apply", "/merchant/apply"]
    for path in pages:
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__csp") == [], path
    page.goto(f"{base}/my")
    avatar = page.locator("img.avatar")
    assert avatar.get_attribute("src").startswith(sandbox.url)  # the stand-in's avatar host
    wait_until(page, "document.querySelector('img.avatar').naturalWidth > 0")
    assert page.evaluate("window.__csp") == []


@pytest.mark.browser
def test_admin_pages_work_under_their_policy(make, desk, live_server):
    """The scripts moved out of the settings and simulator pages still run, and no page
    of the admin reports a violation."""
    make.staff("boss", password="boss-password", role="owner")
    base = live_server.url
    desk.add_init_script(WATCH_VIOLATIONS)
    desk.goto(f"{base}/admin/login")
    desk.fill("#username", "boss")
    desk.fill("#password", "boss-password")
    desk.click("button[type=submit]")
    desk.wait_for_url(f"{base}/admin/")

    response = desk.goto(f"{base}/admin/distribution/settings")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    warning = desk.locator("[data-level3-warning]")
    desk.select_option("[data-levels]", "3")
    warning.wait_for(state="visible")
    desk.select_option("[data-levels]", "2")
    warning.wait_for(state="hidden")

    desk.goto(f"{base}/admin/distribution/simulator")
    provinces = desk.locator("[data-pick=province] option")
    wait_until(desk, "document.querySelectorAll('[data-pick=province] option').length > 30")
    assert provinces.first.inner_text() == "选择省份"

    pages = ["/admin/", "/admin/products/new", "/admin/reports", "/admin/posters"]
    pages += ["/admin/posters/new", "/admin/agents", "/admin/orders", "/admin/staff"]
    for path in pages:
        desk.goto(base + path)
        desk.wait_for_load_state("networkidle")
        assert desk.evaluate("window.__csp") == [], path
