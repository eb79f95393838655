"""Addresses are written one way (province city district detail, app/regions.py) and the
H5 order detail wraps them between words and Chinese characters, never inside a number:
"8 栋 1203" never shows as "12" on one line and "03" on the next."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app import regions
from app.accounts.models import User
from app.extensions import db
from app.orders.services import ItemRequest, place_order
from tests.support.browser import sign_in_on_stand_in

DETAIL = "科技园南区 8 栋 1203"


def test_addresses_are_written_one_way():
    assert regions.region_text("广东省", "深圳市", "南山区") == "广东省 深圳市 南山区"
    assert regions.region_text("北京市", "北京市", "东城区") == "北京市 东城区"
    assert (
        regions.address_text("广东省", "深圳市", "南山区", DETAIL)
        == "广东省 深圳市 南山区 科技园南区 8 栋 1203"
    )
    assert regions.address_text("广东省", "东莞市", "", "莞城 1 号") == "广东省 东莞市 莞城 1 号"


def test_order_and_address_rows_use_the_one_format(app_ctx, make):
    user = make.user()
    address = make.address(user, detail=DETAIL)
    product = make.product(price_fen=1000, stock=5)
    order = place_order(user.id, [ItemRequest(product.skus[0].id, 1)], address.id)
    db.session.commit()
    assert address.full_text == order.address_text == "广东省 深圳市 南山区 " + DETAIL
    assert address.region_text == order.region_text == "广东省 深圳市 南山区"


# What a test puts in the page's address detail, and where "1203" lands: the number of
# distinct line tops its characters sit on (1 = whole on one line).
NUMBER_LINES = """([detail, number]) => {
  const span = document.querySelector('[data-address] .addr-detail');
  span.textContent = detail;
  const node = span.firstChild;
  const at = detail.lastIndexOf(number);
  const range = document.createRange();
  range.setStart(node, at);
  range.setEnd(node, at + number.length);
  return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
}"""


@pytest.mark.browser
def test_order_detail_address_wraps_between_words_at_375(
    app, make, page, live_server, sandbox, artifacts
):
    base = live_server.url
    page.goto(f"{base}/my")
    sign_in_on_stand_in(page, sandbox, "韩梅梅")
    page.wait_for_url(f"{base}/my")
    db.session.rollback()
    me = db.session.scalar(select(User).order_by(User.id.desc()))
    address = make.address(
        me,
        name="韩梅梅",
        phone="13912345678",
        detail=f"粤海街道高新南七道深圳湾科技生态园 {DETAIL}",
    )
    product = make.product("高山乌龙茶", price_fen=3990, stock=10)
    order = place_order(me.id, [ItemRequest(product.skus[0].id, 1)], address.id)
    db.session.commit()

    page.goto(f"{base}/orders/{order.id}")
    line = page.locator("[data-address]")
    text = " ".join(line.inner_text().split())
    assert text == f"广东省 深圳市 南山区 粤海街道高新南七道深圳湾科技生态园 {DETAIL}"
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    # The address as placed wraps onto a second line, the number whole.
    assert line.locator(".addr-detail").evaluate("el => el.getClientRects().length") == 2
    assert page.evaluate(NUMBER_LINES, [address.detail, "1203"]) == 1
    page.screenshot(path=str(artifacts / "order-detail-address.png"), full_page=True)
    # Wherever the line ends, no number or word is cut: try the room number at every
    # position of the line.
    for pad in range(0, 24):
        detail = "科技园南区" + "高" * pad + " 8 栋 1203 室 TowerB"
        assert page.evaluate(NUMBER_LINES, [detail, "1203"]) == 1, detail
        assert page.evaluate(NUMBER_LINES, [detail, "TowerB"]) == 1, detail
