"""Poster jobs: render a distributor's poster into the cache while the page shows a spinner,
and send a fan their poster on the official account (海报 keyword, POSTER menu click).

Job ids are deterministic (``poster-<cache key>``; ``poster-fan-<openid>-<CreateTime>``),
so a page polling twice, or WeChat delivering the same message again, queues one job.
"""

from __future__ import annotations

import io
import logging

from rq import Retry
from wechatpy.exceptions import WeChatClientException

from app.core.redis import get_redis
from app.distribution.models import Distributor
from app.extensions import db
from app.posters import services
from app.wechat.clients import get_wechat_client
from jobs.queues import get_queue

log = logging.getLogger(__name__)

MEDIA_SECONDS = 2 * 86400  # WeChat keeps temporary media 3 days; reuse it for 2


def poster_job_id(key: str) -> str:
    """The one job id that renders the poster with cache key ``key``."""
    return f"poster-{key}"


def enqueue_poster(key: str, distributor_id: int, kind: str, product_id: int | None):
    """Queue ``render_poster`` (after the caller's commit). A job already queued or
    running under the same id is left alone."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    queue = get_queue("high")
    job_id = poster_job_id(key)
    try:
        job = Job.fetch(job_id, connection=queue.connection)
        if job.get_status() in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED):
            return job
    except NoSuchJobError:
        pass
    return queue.enqueue(
        render_poster,
        distributor_id,
        kind,
        product_id,
        job_id=job_id,
        result_ttl=600,
        failure_ttl=600,
        job_timeout=60,
    )


def render_poster(distributor_id: int, kind: str, product_id: int | None = None) -> str:
    """Render a distributor's poster into the cache; returns its key (or why not)."""
    distributor = db.session.get(Distributor, distributor_id)
    if distributor is None:
        return "no distributor"
    try:
        key, _data = services.poster_for_distributor(distributor, kind, product_id)
    except services.PosterError as err:
        db.session.rollback()
        return err.code
    db.session.commit()  # a QR ticket made on the way
    return key


def fan_poster_job_id(openid: str, create_time: int) -> str:
    return f"poster-fan-{openid}-{create_time}"


def enqueue_fan_poster(openid: str, create_time: int):
    """Queue ``send_fan_poster`` for one 海报 message or POSTER click (after the commit).

    Retries come quickly: after a menu click WeChat allows customer-service messages for
    one minute only (3 of them), wechat-protocol.md §5.
    """
    return get_queue("high").enqueue(
        send_fan_poster,
        openid,
        job_id=fan_poster_job_id(openid, create_time),
        retry=Retry(max=2, interval=[5, 15]),
        result_ttl=86400,
        job_timeout=60,
    )


def _media_key(poster_key: str) -> str:
    return f"poster:media:{poster_key}"


def send_fan_poster(openid: str) -> str:
    """Render (or take from the cache) the fan's shop poster, upload it as temporary media
    (``/cgi-bin/media/upload``, reused while it lives) and send it as a customer-service
    image message (``/cgi-bin/message/custom/send``). Returns what happened.

    A network error raises (RQ retries); WeChat refusing the message (outside the window,
    over the count, not a follower) is logged and not retried.
    """
    found = services.fan_poster(openid)
    db.session.commit()  # a QR ticket made on the way
    if found is None:
        return "not a distributor"
    key, data = found
    client = get_wechat_client()
    redis = get_redis()
    media_id = redis.get(_media_key(key))
    try:
        if media_id is None:
            uploaded = client.media.upload("image", ("poster.jpg", io.BytesIO(data), "image/jpeg"))
            media_id = uploaded["media_id"]
            redis.set(_media_key(key), media_id, ex=MEDIA_SECONDS)
        elif isinstance(media_id, bytes):
            media_id = media_id.decode()
        client.message.send_image(openid, media_id)
    except WeChatClientException as err:
        if err.errcode is None:  # no answer from WeChat: worth another try
            raise
        if err.errcode == 40007:  # media expired early: upload again next time
            redis.delete(_media_key(key))
            raise
        log.warning("poster to %s refused by WeChat: %s %s", openid, err.errcode, err.errmsg)
        return f"refused {err.errcode}"
    return "sent"
