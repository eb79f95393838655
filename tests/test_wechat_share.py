"""Share cards: the JS-SDK signature, the config endpoint, the share context, and the page
building the card in a real browser.

The browser tests give the page a fake ``wx`` (``page.add_init_script``): it is WeChat's
browser API, which Chromium does not have, and it records what the page asks of it. The
config comes from the real endpoint, signed with the stand-in's real jsapi_ticket.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from app.catalog.models import ProductImage
from app.distribution.distributors import create_distributor
from app.extensions import db
from app.wechat.jssdk import JssdkError, build_config, page_url, signature
from tests.support.browser import wait_until

# WeChat's published example (JS-SDK 说明文档, 附录1), recomputed in wechat-protocol.md §3.
VECTOR_TICKET = (
    "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
)
VECTOR = {
    "ticket": VECTOR_TICKET,
    "noncestr": "Wm3WZYTPz0wzccnW",
    "timestamp": 1414587457,
    "url": "http://mp.weixin.qq.com",
}
VECTOR_SIGNATURE = "f4d90daf4b3bca3078ab155816175ba34c443a7b"

# Chromium has no ``wx``: this stands in for WeChat's, recording every call. With
# ``window.__wxRefuseFirst`` the first wx.config fails the way a wrong URL does.
FAKE_WX = """
(() => {
  const calls = { config: [], appMessage: [], timeline: [] };
  const ready = [], errors = [];
  window.__wxCalls = calls;
  window.wx = {
    config(options) {
      calls.config.push(options);
      const refuse = window.__wxRefuseFirst && calls.config.length === 1;
      setTimeout(() => {
        if (refuse) errors.forEach((cb) => cb({ errMsg: "config:invalid signature" }));
        else ready.forEach((cb) => cb());
      }, 0);
    },
    ready(cb) { ready.push(cb); },
    error(cb) { errors.push(cb); },
    updateAppMessageShareData(options) { calls.appMessage.push(options); },
    updateTimelineShareData(options) { calls.timeline.push(options); },
  };
})();
"""


def sandbox_ticket(sandbox) -> str:
    """The jsapi_ticket the stand-in hands out now (the same one while it is valid)."""
    return sandbox.server.app.extensions["wechat_sandbox"].jsapi().value


def sha1_config(ticket: str, config: dict, url: str) -> str:
    raw = (
        f"jsapi_ticket={ticket}&noncestr={config['nonceStr']}"
        f"&timestamp={config['timestamp']}&url={url}"
    )
    return hashlib.sha1(raw.encode()).hexdigest()  # noqa: S324 - WeChat's algorithm


# --- the signature ---------------------------------------------------------------------


def test_signature_matches_wechats_published_vector():
    assert signature(**VECTOR) == VECTOR_SIGNATURE
    config = build_config(
        "wx123",
        VECTOR["ticket"],
        VECTOR["url"],
        timestamp=VECTOR["timestamp"],
        nonce_str=VECTOR["noncestr"],
    )
    assert config.signature == VECTOR_SIGNATURE
    assert config.as_wx_config() == {
        "appId": "wx123",
        "timestamp": 1414587457,
        "nonceStr": "Wm3WZYTPz0wzccnW",
        "signature": VECTOR_SIGNATURE,
        "jsApiList": [
            "updateAppMessageShareData",
            "updateTimelineShareData",
            "requestMerchantTransfer",
        ],
    }


def test_fresh_configs_use_new_nonces():
    one = build_config("wx1", "t", "https://shop.example.com/")
    two = build_config("wx1", "t", "https://shop.example.com/")
    assert one.nonce_str != two.nonce_str
    assert one.signature == signature("t", one.nonce_str, one.timestamp, one.url)


@pytest.mark.parametrize(
    ("given", "signed"),
    [
        (
            "https://shop.example.com/product/3?ref=AB12#gallery",
            "https://shop.example.com/product/3?ref=AB12",
        ),
        ("https://SHOP.example.com:443/", "https://SHOP.example.com:443/"),
        (
            "https://shop.example.com/search?q=%E8%8C%B6",
            "https://shop.example.com/search?q=%E8%8C%B6",
        ),
        ("https://shop.example.com/#/", "https://shop.example.com/"),
    ],
)
def test_page_url_keeps_the_url_as_the_browser_has_it_without_the_fragment(given, signed):
    assert page_url(given, "https://shop.example.com") == signed


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("", "invalid_url"),
        ("   ", "invalid_url"),
        ("https://evil.example.com/", "foreign_url"),
        ("https://shop.example.com.evil.com/", "foreign_url"),
        ("http://shop.example.com/", "foreign_url"),  # another scheme
        ("https://shop.example.com:8443/", "foreign_url"),  # another port
        ("https://user:pw@shop.example.com/", "invalid_url"),
        ("javascript:alert(1)", "invalid_url"),
        ("/product/1", "invalid_url"),
        ("https://shop.example.com/a b", "invalid_url"),
        ("https://shop.example.com/\nx", "invalid_url"),
        ("https://shop.example.com:99999/", "invalid_url"),
        ("https://shop.example.com/" + "a" * 1100, "invalid_url"),
    ],
)
def test_page_url_refuses_other_sites_and_junk(given, code):
    with pytest.raises(JssdkError) as caught:
        page_url(given, "https://shop.example.com")
    assert caught.value.code == code


# --- the endpoints -----------------------------------------------------------------------


def test_config_endpoint_signs_a_page_of_the_site_with_the_stand_ins_ticket(app, client, sandbox):
    base = app.config["PUBLIC_BASE_URL"]
    response = client.get(
        "/api/v1/wechat/jssdk-config", query_string={"url": f"{base}/product/7?ref=X1#top"}
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["url"] == f"{base}/product/7?ref=X1"
    config = body["config"]
    assert config["appId"] == app.config["WECHAT_APPID"]
    assert config["signature"] == sha1_config(sandbox_ticket(sandbox), config, body["url"])
    assert "updateAppMessageShareData" in config["jsApiList"]

    # The ticket is cached in Redis: a second page is signed without asking WeChat again.
    calls = sandbox.server.app.extensions["wechat_sandbox"].calls
    before = calls["/cgi-bin/ticket/getticket"]
    again = client.get("/api/v1/wechat/jssdk-config", query_string={"url": f"{base}/"})
    assert again.status_code == 200
    assert calls["/cgi-bin/ticket/getticket"] == before


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("https://evil.example.com/product/1", 400, "foreign_url"),
        ("http://127.0.0.2:1/", 400, "foreign_url"),
        ("not a url", 400, "invalid_url"),
        ("", 422, "validation_error"),
    ],
)
def test_config_endpoint_refuses_foreign_or_bad_urls(client, url, status, code):
    response = client.get("/api/v1/wechat/jssdk-config", query_string={"url": url})
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code


def test_config_endpoint_needs_a_url(client):
    response = client.get("/api/v1/wechat/jssdk-config")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "validation_error"


def test_share_context_names_the_signed_in_active_distributor(app, client, make, login_as):
    base = app.config["PUBLIC_BASE_URL"]
    anonymous = client.get("/api/v1/wechat/share-context")
    assert anonymous.headers["Cache-Control"] == "no-store"
    assert anonymous.get_json() == {"signed_in": False, "ref": None, "base_url": base}

    customer = make.user()
    login_as(client, customer)
    assert client.get("/api/v1/wechat/share-context").get_json()["ref"] is None

    distributor = create_distributor(customer.id, None)
    db.session.commit()
    body = client.get("/api/v1/wechat/share-context").get_json()
    assert body == {"signed_in": True, "ref": distributor.code, "base_url": base}

    distributor.status = "disabled"
    db.session.commit()
    assert client.get("/api/v1/wechat/share-context").get_json()["ref"] is None


def test_share_context_of_staff_carries_no_ref(client, make, login_as):
    login_as(client, make.staff())
    assert client.get("/api/v1/wechat/share-context").get_json()["signed_in"] is False


# --- the page, in a browser ----------------------------------------------------------------


def _product_with_cover(make):
    product = make.product(title="手工陶瓷茶杯", price_fen=1234, stock=5)
    product.subtitle = "景德镇青瓷"
    db.session.add(ProductImage(product_id=product.id, filename="cup.png", width=750, height=750))
    db.session.commit()
    return product


def _config_requests(page) -> list[str]:
    """The ``url`` parameter of every jssdk-config request the page made."""
    return [
        parse_qs(urlsplit(url).query)["url"][0]
        for url in page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        if "/api/v1/wechat/jssdk-config" in url
    ]


@pytest.mark.browser
def test_product_page_configures_wx_and_sets_the_share_card(app, make, page, live_server, sandbox):
    product = _product_with_cover(make)
    base = live_server.url
    page.add_init_script(FAKE_WX)
    with page.expect_request("**/api/v1/wechat/jssdk-config?**") as requested:
        page.goto(f"{base}/product/{product.id}#desc")
    signed_url = parse_qs(urlsplit(requested.value.url).query)["url"][0]
    assert signed_url == f"{base}/product/{product.id}"
    wait_until(page, "window.__wxCalls.timeline.length > 0")

    calls = page.evaluate("window.__wxCalls")
    [config] = calls["config"]
    assert config["appId"] == app.config["WECHAT_APPID"]
    assert config["debug"] is False
    assert config["signature"] == sha1_config(sandbox_ticket(sandbox), config, signed_url)
    assert config["jsApiList"] == [
        "updateAppMessageShareData",
        "updateTimelineShareData",
        "requestMerchantTransfer",
    ]
    link = f"{base}/product/{product.id}"
    image = f"{base}/media/cup.png"
    assert calls["appMessage"] == [
        {"title": "手工陶瓷茶杯", "desc": "¥12.34 · 景德镇青瓷", "link": link, "imgUrl": image}
    ]
    assert calls["timeline"] == [{"title": "手工陶瓷茶杯 ¥12.34", "link": link, "imgUrl": image}]
    share = page.evaluate("window.__shareData")
    assert share["link"] == link
    assert share["ref"] is None


@pytest.mark.browser
def test_a_distributors_share_card_carries_their_ref(app, make, page, live_server, sandbox):
    from tests.support.browser import sign_in_on_stand_in

    product = _product_with_cover(make)
    base = live_server.url
    page.add_init_script(FAKE_WX)
    page.goto(f"{base}/login?next=/my")
    sign_in_on_stand_in(page, sandbox, "张小凡")
    page.wait_for_url(f"{base}/my")
    from app.accounts.models import User

    db.session.rollback()
    fan = sandbox.server.app.extensions["wechat_sandbox"].fan_for_nickname("张小凡")
    user = db.session.scalar(db.select(User).where(User.openid == fan.openid))
    distributor = create_distributor(user.id, None)
    db.session.commit()

    page.goto(f"{base}/product/{product.id}")
    wait_until(page, "window.__wxCalls.appMessage.length > 0")
    link = f"{base}/product/{product.id}?ref={distributor.code}"
    assert page.evaluate("window.__wxCalls.appMessage[0].link") == link
    assert page.evaluate("window.__wxCalls.timeline[0].link") == link
    assert page.evaluate("window.__shareData.ref") == distributor.code
    # The cached page itself never carries anyone's code.
    assert distributor.code not in page.content().split('id="share-data"')[1].split("</script>")[0]


@pytest.mark.browser
def test_ios_signs_the_entry_url_first_then_the_current_one(app, make, page, live_server, sandbox):
    """The test browser is an iPhone: the entry URL is signed first; when WeChat refuses
    it (fake wx.error), the current URL is signed and the card is set."""
    product = _product_with_cover(make)
    product.featured = True
    db.session.commit()
    base = live_server.url
    page.add_init_script(FAKE_WX)
    page.goto(f"{base}/")
    wait_until(page, "window.__wxCalls.appMessage.length > 0")
    home_card = page.evaluate("window.__wxCalls.appMessage[0]")
    assert home_card["link"] == f"{base}/"
    assert home_card["imgUrl"] == f"{base}/media/cup.png"

    page.add_init_script("window.__wxRefuseFirst = true;")
    page.goto(f"{base}/product/{product.id}")
    wait_until(page, "window.__wxCalls.appMessage.length > 0")
    assert _config_requests(page) == [f"{base}/", f"{base}/product/{product.id}"]
    calls = page.evaluate("window.__wxCalls")
    assert len(calls["config"]) == 2
    assert calls["appMessage"][0]["link"] == f"{base}/product/{product.id}"


@pytest.mark.browser
def test_outside_wechat_no_sdk_is_loaded_and_the_page_still_works(app, make, browser, live_server):
    product = _product_with_cover(make)
    context = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
    requested: list[str] = []
    errors: list[str] = []
    try:
        outside = context.new_page()
        outside.on("request", lambda r: requested.append(r.url))
        outside.on("pageerror", lambda e: errors.append(str(e)))
        outside.goto(f"{live_server.url}/product/{product.id}")
        wait_until(outside, "window.__shareData !== undefined")
        assert outside.evaluate("window.__shareData.title") == "手工陶瓷茶杯"
        assert outside.evaluate("typeof window.wx") == "undefined"
    finally:
        context.close()
    assert not any("jssdk-config" in url or "res.wx.qq.com" in url for url in requested)
    assert errors == []


@pytest.mark.browser
def test_inside_wechat_without_the_sdk_the_page_degrades_quietly(app, make, page, live_server):
    """WeChat's script cannot load (no network here): no card, no error, page intact."""
    product = _product_with_cover(make)
    asked: list[str] = []
    errors: list[str] = []

    def refuse(route):
        asked.append(route.request.url)
        route.abort()

    page.route("https://res.wx.qq.com/**", refuse)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live_server.url}/product/{product.id}")
    wait_until(page, "window.__shareData !== undefined")
    page.wait_for_timeout(200)
    assert asked == ["https://res.wx.qq.com/open/js/jweixin-1.6.0.js"]
    assert errors == []
    assert page.get_by_role("button", name="加入购物车").is_visible()
    data = json.loads(page.locator("#share-data").text_content())
    assert data["price_fen"] == 1234
