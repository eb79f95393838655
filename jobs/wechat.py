"""Official-account jobs: the slow follow-ups of what the message server received.

``fetch_fan_info`` asks ``/cgi-bin/user/info`` about a fan who just followed (unionid,
subscribe_scene, qr_scene_str, a nickname where WeChat still gives one) and stores it on
the fan and the customer. The message server queues it after its commit, with a job id
per follow event, so a duplicate event never queues it twice.
"""

from __future__ import annotations

import logging

from rq import Retry
from wechatpy.exceptions import WeChatClientException

from app.extensions import db
from app.wechat.clients import get_wechat_client
from app.wechat.fans import apply_user_info
from jobs.queues import enqueue_once_piped

log = logging.getLogger(__name__)

# errcodes that no retry will fix: invalid openid, openid of another account
PERMANENT_ERRORS = (40003, 40013, 46004)


def fan_info_job_id(openid: str, create_time: int) -> str:
    """The one job id the follow-up of a follow event can have."""
    return f"wechat-fan-info-{openid}-{create_time}"


def enqueue_fan_info(openid: str, create_time: int):
    """Queue ``fetch_fan_info`` for a follow event (call after the commit)."""
    return enqueue_once_piped(
        "default",
        fetch_fan_info,
        openid,
        job_id=fan_info_job_id(openid, create_time),
        retry=Retry(max=3, interval=[10, 60, 300]),
        result_ttl=86400,
    )


def fetch_fan_info(openid: str) -> str:
    """Fetch and store one fan's profile; returns what happened (for logs and tests).

    A network error or a temporary WeChat error raises, so RQ retries it later.
    """
    try:
        info = get_wechat_client().user.get(openid)
    except WeChatClientException as err:
        if err.errcode in PERMANENT_ERRORS:
            log.warning("user/info refused for %s: %s %s", openid, err.errcode, err.errmsg)
            return "refused"
        raise
    fan = apply_user_info(info)
    db.session.commit()
    return "updated" if fan is not None else "unknown fan"
