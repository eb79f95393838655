"""专属优惠券 in the distributor centre (/distributor/coupons): the running exclusive coupons
with the distributor's own link and QR code; refused like the other centre pages; a customer
who opens the link and claims is bound to that distributor."""

from __future__ import annotations

import html as html_lib
import re
from datetime import timedelta

from app.core.time import utcnow
from app.coupons.services import set_paused
from app.distribution.binding import current_binding
from app.distribution.distributors import create_distributor
from app.extensions import db
from tests.support import commissions as c
from tests.support.admin import fresh_client
from tests.support.coupons import template
from tests.support.distribution import make_distributor
from tests.support.orders import sign_in

PAGE = "/distributor/coupons"


def text(response) -> str:
    return response.get_data(as_text=True)


def exclusive_world():
    """One running exclusive coupon, and a paused, an ended and a used-up one; a public one."""
    now = utcnow()
    running = template(name="小店专属满减", distributor_only=True, stock=30)
    paused = template(name="停发专属券", distributor_only=True)
    set_paused(paused, True)
    ended = template(
        name="过期专属券",
        distributor_only=True,
        valid_mode="fixed",
        starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=10),
    )
    ended.starts_at, ended.ends_at = now - timedelta(days=10), now - timedelta(seconds=1)
    gone = template(name="抢光专属券", distributor_only=True, stock=1)
    gone.issued = 1
    public = template(name="人人可领券")
    db.session.commit()
    return running, public


def test_a_distributor_sees_running_exclusive_coupons_with_own_links(app, make, login_as):
    c.configure()
    running, _public = exclusive_world()
    seller = make_distributor(make, "小王")
    client = fresh_client(app)
    login_as(client, seller.user)
    response = client.get(PAGE)
    assert response.status_code == 200
    page = text(response)
    assert "专属优惠券" in page and "小店专属满减" in page
    assert "满 ¥100.00 减 ¥20.00" in page and "领取后 7 天内有效" in page and "剩 30 张" in page
    for hidden in ("停发专属券", "过期专属券", "抢光专属券", "人人可领券"):
        assert hidden not in page, hidden
    link = f"/coupons/{running.id}?d={seller.code}"
    urls = re.findall(r'data-copy="([^"]+)"', page)
    assert len(urls) == 1 and html_lib.unescape(urls[0]).endswith(link)
    assert re.search(r"<svg[^>]*>.*<path", page, re.S)  # the QR code, drawn on the server
    share = re.search(r'id="share-data">(.*?)</script>', page).group(1)
    assert link in share and '"own_link": true' in share
    # The centre's menu leads here.
    assert PAGE in text(client.get("/distributor"))


def test_empty_state(app, make, login_as):
    c.configure()
    template(name="人人可领券")
    seller = make_distributor(make, "小李")
    client = fresh_client(app)
    login_as(client, seller.user)
    page = text(client.get(PAGE))
    assert "暂无专属优惠券" in page and "人人可领券" not in page and "share-data" not in page


def test_refused_like_the_other_centre_pages(app, make, login_as):
    c.configure()
    template(name="小店专属满减", distributor_only=True)
    anonymous = fresh_client(app)
    answer = anonymous.get(PAGE)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login?next=/distributor")

    for who in (make.user(nickname="路人"), None):
        if who is None:  # an applicant still waiting for review
            who = make.user(nickname="申请人")
            row = create_distributor(who.id, None)
            row.status = "pending"
            db.session.commit()
        client = fresh_client(app)
        login_as(client, who)
        centre = client.get("/distributor/products")
        answer = client.get(PAGE)
        assert (answer.status_code, answer.headers.get("Location")) == (
            centre.status_code,
            centre.headers.get("Location"),
        )
        assert answer.status_code == 302 and answer.headers["Location"] == "/distributor"
        assert "小店专属满减" not in text(client.get(PAGE, follow_redirects=True))

    staff = fresh_client(app)
    login_as(staff, make.staff())
    assert staff.get(PAGE).status_code == 403


def test_a_customer_who_claims_through_the_link_is_bound(app, make, login_as):
    c.configure()
    running, _public = exclusive_world()
    seller = make_distributor(make, "小王")
    mine = fresh_client(app)
    login_as(mine, seller.user)
    link = html_lib.unescape(re.search(r'data-copy="([^"]+)"', text(mine.get(PAGE))).group(1))
    path = link[link.index("/coupons/") :]

    buyer = make.user(nickname="顾客")
    client = fresh_client(app)
    headers = sign_in(client, login_as, buyer)
    page = text(client.get(path))
    assert "小王 送你一张优惠券" in page and f'data-distributor="{seller.code}"' in page
    assert current_binding(buyer.id) is None  # opening the link binds nobody
    answer = client.post(
        f"/api/v1/coupons/{running.id}/claim", json={"distributor": seller.code}, headers=headers
    )
    assert answer.status_code == 201, text(answer)
    db.session.expire_all()
    assert current_binding(buyer.id).distributor_id == seller.id
    # One fewer left on the distributor's page.
    assert "剩 29 张" in text(mine.get(PAGE))
