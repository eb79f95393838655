"""The official account's 海报 keyword and POSTER menu click: a signed push over real HTTP,
the reply, the queued job, and the poster reaching the stand-in's message log as an image
(uploaded to /cgi-bin/media/upload, sent with /cgi-bin/message/custom/send)."""

from __future__ import annotations

import requests
from rq.job import Job

from app.core.redis import get_redis
from app.distribution.distributors import create_distributor
from app.extensions import db
from app.posters import services
from jobs.posters import fan_poster_job_id, send_fan_poster
from jobs.queues import get_queue
from tests.support import wechat as wx
from tests.support.poster import decode_qr


def _images_to(sandbox, openid: str) -> list[dict]:
    log = requests.get(f"{sandbox.url}/_sandbox/messages", timeout=5).json()["messages"]
    return [m for m in log if m.get("touser") == openid and m["kind"] == "image"]


def _queued_poster_job(openid: str) -> Job:
    ids = [i for i in get_queue("high").job_ids if i.startswith(f"poster-fan-{openid}-")]
    assert len(ids) == 1, ids
    return Job.fetch(ids[0], connection=get_redis())


def test_keyword_sends_the_poster_image_to_the_fan(live_server, sandbox, make):
    user = make.user(nickname="海报分销员")
    distributor = create_distributor(user.id, None)
    db.session.commit()
    xml = wx.text(user.openid, "海报")
    answer = wx.reply(wx.post(live_server.url, xml))
    assert "海报正在生成" in answer["Content"] and f"ref={distributor.code}" in answer["Content"]
    wx.post(live_server.url, xml)  # WeChat's retry: no second job
    job = _queued_poster_job(user.openid)
    assert job.func_name == "jobs.posters.send_fan_poster"

    assert job.perform() == "sent"  # what the worker runs
    (sent,) = _images_to(sandbox, user.openid)
    image = requests.get(f"{sandbox.url}/_sandbox/media/{sent['media_id']}", timeout=5)
    assert image.headers["Content-Type"] == "image/jpeg"
    _key, data = services.fan_poster(user.openid)
    assert image.content == data
    assert decode_qr(image.content).startswith(sandbox.url)  # the parametric QR (stand-in)

    # The same poster again reuses the uploaded media (it lives 3 days).
    assert send_fan_poster(user.openid) == "sent"
    media_ids = {m["media_id"] for m in _images_to(sandbox, user.openid)}
    assert media_ids == {sent["media_id"]}


def test_menu_click_queues_the_poster_and_non_distributors_get_none(live_server, sandbox, make):
    user = make.user()
    create_distributor(user.id, None)
    db.session.commit()
    wx.post(live_server.url, wx.event(user.openid, "CLICK", "POSTER"))
    assert _queued_poster_job(user.openid).perform() == "sent"
    assert len(_images_to(sandbox, user.openid)) == 1

    stranger = make.user()
    answer = wx.reply(wx.post(live_server.url, wx.text(stranger.openid, "海报")))
    assert "申请成为分销员" in answer["Content"]
    assert not [i for i in get_queue("high").job_ids if stranger.openid in i]
    assert send_fan_poster(stranger.openid) == "not a distributor"


def test_wechat_refusing_the_message_is_logged_not_retried(live_server, sandbox, make):
    user = make.user()
    create_distributor(user.id, None)
    db.session.commit()
    settings = f"{sandbox.url}/_sandbox/messages/settings"
    requests.post(settings, json={"fail_errcode": 45015, "fail_times": 1}, timeout=5)
    try:
        assert send_fan_poster(user.openid) == "refused 45015"
    finally:
        requests.post(settings, json={"fail_errcode": None}, timeout=5)
    assert _images_to(sandbox, user.openid) == []
    assert fan_poster_job_id("o", 1) == "poster-fan-o-1"
