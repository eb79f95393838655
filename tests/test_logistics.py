"""查看物流: the 快递100 client against its stand-in (signature, cache, timeout, refusals)
and the customer's logistics page, which always shows the carrier and the number."""

from __future__ import annotations

import hashlib

import pytest
import requests

from app.core.redis import get_redis
from app.extensions import db
from app.orders.tracking import CACHE_PREFIX, sign, track
from tests.support.aftersale import customer_client, paid_order

QUERY = "/poll/query.do"


def _calls(sandbox) -> int:
    return requests.get(f"{sandbox.url}/_sandbox/calls", timeout=5).json()["calls"].get(QUERY, 0)


def test_sign_is_md5_of_param_key_customer_upper_case():
    param = '{"com":"yuantong","num":"12345678"}'
    expected = hashlib.md5((param + "KEY" + "CUSTOMER").encode()).hexdigest().upper()  # noqa: S324
    assert sign(param, "KEY", "CUSTOMER") == expected
    assert expected == expected.upper() and len(expected) == 32


def test_timeline_from_the_stand_in_then_from_the_cache(app_ctx, sandbox):
    before = _calls(sandbox)
    first = track("顺丰速运", "SF1234567890", "13800138000")
    assert first.problem == "" and not first.cached
    assert len(first.events) >= 3
    assert first.events[0].time > first.events[-1].time  # newest first, as 快递100 answers
    assert "揽收" in first.events[-1].context
    assert _calls(sandbox) == before + 1

    again = track("顺丰速运", "SF1234567890", "13800138000")
    assert again.cached and [e.context for e in again.events] == [e.context for e in first.events]
    assert _calls(sandbox) == before + 1  # answered from Redis
    ttl = get_redis().ttl(f"{CACHE_PREFIX}shunfeng:SF1234567890")
    assert 0 < ttl <= app_ctx.config["KUAIDI100_CACHE_SECONDS"]


def test_timeout_error_and_refusal_give_no_events_and_no_cache(app_ctx, sandbox, monkeypatch):
    monkeypatch.setitem(app_ctx.config, "KUAIDI100_TIMEOUT_SECONDS", 0.3)
    slow = track("中通快递", "SLOW12345678")
    assert slow.events == [] and "超时" in slow.problem
    assert slow.site == "https://www.zto.com/"
    # The others get the usual patience: their answers must be the refusals, not timeouts.
    monkeypatch.setitem(app_ctx.config, "KUAIDI100_TIMEOUT_SECONDS", 10)

    failed = track("中通快递", "ERR123456789")
    assert failed.events == [] and failed.problem == "物流信息暂时无法获取"
    refused = track("中通快递", "NONE12345678")
    assert refused.events == [] and refused.problem == "暂无物流信息，请稍后再试"
    assert not get_redis().keys(f"{CACHE_PREFIX}*")

    monkeypatch.setitem(app_ctx.config, "KUAIDI100_KEY", "not-the-key")
    forged = track("中通快递", "ZT1234567890")
    # The stand-in checks the signature and refuses (a refusal, not a timeout or an error).
    assert forged.events == [] and forged.problem == "暂无物流信息，请稍后再试"


def test_without_credentials_no_call_is_made(app_ctx, sandbox, monkeypatch):
    monkeypatch.setitem(app_ctx.config, "KUAIDI100_CUSTOMER", None)
    before = _calls(sandbox)
    result = track("圆通速递", "YT1234567890")
    assert result.events == [] and result.problem == "暂未开通物流查询"
    assert result.site == "https://www.yto.net.cn/"
    assert _calls(sandbox) == before


@pytest.mark.parametrize(
    ("number", "timeline"),
    [("SF0000012345", True), ("SLOW00012345", False)],
)
def test_logistics_page(app, make, login_as, sandbox, monkeypatch, number, timeline):
    if not timeline:  # only the SLOW number is meant to time out
        monkeypatch.setitem(app.config, "KUAIDI100_TIMEOUT_SECONDS", 0.3)
    order = paid_order(make, shipped=True)
    order.tracking_number = number
    db.session.commit()
    client, _token = customer_client(app, login_as, order.user)
    detail = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert f"/orders/{order.id}/logistics" in detail and "查看物流" in detail

    page = client.get(f"/orders/{order.id}/logistics")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "顺丰速运" in html and number in html and "复制" in html
    if timeline:
        assert "data-tracking" in html and "揽收" in html
    else:
        assert "data-no-tracking" in html and "超时" in html
        assert "https://www.sf-express.com/" in html


def test_logistics_page_of_an_unshipped_order_is_404(app, make, login_as):
    order = paid_order(make)
    client, _token = customer_client(app, login_as, order.user)
    assert client.get(f"/orders/{order.id}/logistics").status_code == 404
    assert client.get(f"/orders/{2**31}/logistics").status_code == 404
