"""WeChat's requests to us: the official account's message server ``GET/POST /wechat``.

Thin: the checks and the handling are in ``app.wechat.messages``. The view commits once
and only then queues slow work, so WeChat gets its answer in milliseconds (it gives up
after 5 s and retries).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.extensions import csrf, db
from app.wechat import messages
from jobs.posters import enqueue_fan_poster
from jobs.wechat import enqueue_fan_info

log = logging.getLogger(__name__)

bp = Blueprint("wechat", __name__)


def _credentials() -> messages.Credentials:
    config = current_app.config
    return messages.Credentials(
        token=config["WECHAT_TOKEN"] or "",
        aes_key=config.get("WECHAT_AES_KEY") or None,
        appid=config.get("WECHAT_APPID") or "",
    )


def _text(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


@bp.get("/wechat")
@csrf.exempt
def verify():
    """URL check (服务器配置): echo ``echostr`` when the signature is right and recent."""
    try:
        messages.authenticate_query(_credentials().token, request.args)
        messages.claim_url_check(request.args)
    except messages.MessageRejected as err:
        log.warning("wechat url check refused (%s): %s", err.status, err.reason)
        return _text("签名错误" if err.status == 403 else "请求无效", err.status)
    return _text(request.args.get("echostr", ""))


@bp.post("/wechat")
@csrf.exempt
def receive():
    """A message or event: verify, record once, bind, reply (passive) or ``success``."""
    creds = _credentials()
    # Signature first: nobody gets the body read (or a size answer) without the token.
    try:
        messages.authenticate_query(creds.token, request.args)
    except messages.MessageRejected as err:
        log.warning("wechat push refused (%s): %s", err.status, err.reason)
        return _text("签名错误", 403)
    if (request.content_length or 0) > messages.MAX_BODY:
        return _text("消息过大", 413)
    request.max_content_length = messages.MAX_BODY  # also caps chunked bodies
    try:
        body = request.get_data(cache=False)
        decoded = messages.decode_request(request.args, body, creds)
        message = messages.parse(decoded.xml)
        outcome = messages.handle_message(message, current_app.config["PUBLIC_BASE_URL"])
        db.session.commit()
    except RequestEntityTooLarge:
        return _text("消息过大", 413)
    except messages.MessageRejected as err:
        db.session.rollback()
        log.warning("wechat push refused (%s): %s", err.status, err.reason)
        return _text("请求无效", err.status)
    for job, arg in outcome.after_commit:
        _enqueue(job, arg, message)
    if not outcome.reply:
        return _text("success")
    xml = messages.encode_reply(decoded, messages.reply_xml(message, outcome.reply))
    return Response(xml, mimetype="application/xml")


def _enqueue(job: str, arg: str, message) -> None:
    """Queue slow follow-up work; a lost job must not fail WeChat's push (it would retry)."""
    try:
        if job == "fan_info":
            enqueue_fan_info(arg, int(message.time))
        elif job == "poster":
            enqueue_fan_poster(arg, int(message.time))
    except Exception:
        log.exception("could not queue %s for %s", job, arg)
