"""Where the promotion funnel is read: the centre's 推广效果 page, the JSON API
(GET /api/v1/distributor/funnel) and the admin page with its CSV export."""

from __future__ import annotations

import csv
import io

from app.core.charts import MOBILE, Series, chart
from tests.support.api import error_of
from tests.support.commissions import configure, distributor, pay, place
from tests.support.distribution import signed_in
from tests.support.funnel import visit


def _one_sale(app, make, login_as):
    """A distributor whose link brought one visitor, one binding and one paid order."""
    configure(level1_bp=1000)
    seller = distributor(make, nickname="推广达人")
    cup = make.product(title="青瓷茶杯", price_fen=12345, stock=10)
    customer = make.user(nickname="李雷")
    browser = signed_in(app, login_as, customer)
    visit(browser, f"/product/{cup.id}", seller.code)
    pay(place(make, customer, product=cup))
    return seller, cup


def test_centre_page_shows_the_funnel(app, make, login_as):
    seller, _cup = _one_sale(app, make, login_as)
    client = signed_in(app, login_as, seller.user)
    page = client.get("/distributor/funnel").get_data(as_text=True)
    assert "data-funnel-visits>1<" in page
    assert "data-funnel-bindings>1<" in page
    assert "data-funnel-orders>1<" in page
    assert "¥123.45" in page and "¥12.34" in page  # sales, 10% commission (fen floored)
    assert "青瓷茶杯" in page and "<svg" in page
    assert client.get("/distributor/funnel?days=30").status_code == 200
    assert "推广效果" in client.get("/distributor").get_data(as_text=True)


def test_centre_page_empty_state_and_bad_input(app, make, login_as):
    seller = distributor(make)
    client = signed_in(app, login_as, seller.user)
    page = client.get("/distributor/funnel").get_data(as_text=True)
    assert "还没有推广数据" in page
    for bad in ("5", "abc", "-7", "7.0", "²", "７", "9" * 40):
        response = client.get(f"/distributor/funnel?days={bad}")
        assert response.status_code == 400, bad
        assert "7 天或 30 天" in response.get_data(as_text=True)
    # Not a distributor: off to the join page.
    other = signed_in(app, login_as, make.user())
    assert other.get("/distributor/funnel").status_code == 302


def test_api_funnel(app, make, login_as):
    seller, cup = _one_sale(app, make, login_as)
    client = signed_in(app, login_as, seller.user)
    body = client.get("/api/v1/distributor/funnel?days=7").get_json()
    assert body["days"] == 7 and len(body["daily"]) == 7
    assert body["totals"] == {
        "visits": 1,
        "bindings": 1,
        "orders": 1,
        "sales_fen": 12345,
        "commission_fen": 1234,
    }
    assert body["daily"][-1]["day"] == body["last_day"]
    assert body["products"] == [
        {
            "product_id": cup.id,
            "title": "青瓷茶杯",
            "visits": 1,
            "bindings": 0,
            "orders": 1,
            "sales_fen": 12345,
            "commission_fen": 1234,
        }
    ]
    assert len(client.get("/api/v1/distributor/funnel?days=30").get_json()["daily"]) == 30
    assert len(client.get("/api/v1/distributor/funnel").get_json()["daily"]) == 7
    error_of(client.get("/api/v1/distributor/funnel?days=14"), 422, "validation_error")
    error_of(client.get("/api/v1/distributor/funnel?days=x"), 422, "validation_error")
    plain = signed_in(app, login_as, make.user())
    error_of(plain.get("/api/v1/distributor/funnel"), 404, "not_distributor")
    error_of(app.test_client().get("/api/v1/distributor/funnel"), 401, "unauthorized")


def test_api_funnel_is_in_the_openapi_document(client):
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/distributor/funnel"]["get"]
    assert operation["security"] == [{"cookieSession": []}]
    assert {p["name"] for p in operation["parameters"]} == {"days"}


def test_admin_funnel_whole_shop_one_distributor_and_csv(app, make, login_as):
    seller, cup = _one_sale(app, make, login_as)
    quiet = distributor(make, nickname="安静的人")
    staff = app.test_client()
    login_as(staff, make.staff())

    page = staff.get("/admin/distribution/funnel").get_data(as_text=True)
    assert "data-funnel-who>全店<" in page
    assert "data-funnel-orders>1<" in page and "¥123.45" in page
    # The whole shop lists the distributors who brought something; the quiet one is not.
    assert f'data-distributor="{seller.id}"' in page
    assert f'data-distributor="{quiet.id}"' not in page

    found = staff.get("/admin/distribution/funnel?q=推广").get_data(as_text=True)
    assert f"d={seller.id}" in found and f"d={quiet.id}" not in found
    assert "没有找到" in staff.get("/admin/distribution/funnel?q=无此人").get_data(as_text=True)

    mine = staff.get(f"/admin/distribution/funnel?d={seller.id}&days=30").get_data(as_text=True)
    assert f"#{seller.id} 推广达人（{seller.code}）" in mine
    assert "data-funnel-visits>1<" in mine
    theirs = staff.get(f"/admin/distribution/funnel?d={quiet.id}").get_data(as_text=True)
    assert "data-funnel-visits>0<" in theirs and "还没有推广访问" in theirs

    response = staff.get(f"/admin/distribution/funnel/export?d={seller.id}&days=7")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[1][:4] == ["日期", "访问人数", "新绑定客户", "支付订单"]
    total = next(r for r in rows if r and r[0] == "合计")
    assert total == ["合计", "1", "1", "1", "123.45", "12.34"]
    product = next(r for r in rows if r and r[0] == str(cup.id))
    assert product == [str(cup.id), "青瓷茶杯", "1", "", "1", "123.45", "12.34"]
    whole = staff.get("/admin/distribution/funnel/export").get_data(as_text=True)
    assert "全店" in whole
    ranked = next(r for r in csv.reader(io.StringIO(whole)) if r and r[0].startswith("#"))
    assert ranked == [f"#{seller.id} 推广达人（{seller.code}）", "1", "1", "1", "123.45", "12.34"]

    for bad, status in (
        ("days=3", 400),
        ("days=³", 400),
        ("d=abc", 400),
        ("d=²", 400),
        ("d=99999999", 404),
    ):
        response = staff.get(f"/admin/distribution/funnel?{bad}")
        assert response.status_code == status, bad
        assert staff.get(f"/admin/distribution/funnel/export?{bad}").status_code == status


def test_admin_funnel_is_for_staff_only(app, make, login_as):
    seller = distributor(make)
    customer = signed_in(app, login_as, seller.user)
    for path in ("/admin/distribution/funnel", "/admin/distribution/funnel/export"):
        response = customer.get(path)
        assert response.status_code in (302, 403), path
        assert app.test_client().get(path).status_code == 302


def test_count_charts_step_in_whole_numbers():
    """Counts on a chart's axis go up in four equal whole steps (shared chart code)."""
    for top, labels in ((1, ["0", "1", "2", "3", "4"]), (5, ["0", "2", "4", "6", "8"])):
        drawn = chart(["2026-12-07"], [Series("访问人数", [top])], money=False, canvas=MOBILE)
        assert [label for _y, label in drawn.ticks] == labels
        assert drawn.width == MOBILE.width
    assert [t for _y, t in chart(["a"], [Series("x", [90])], money=False).ticks][-1] == "120"
