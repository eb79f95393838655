"""Distributors' parametric QR codes (带参二维码) and the scenes they carry.

Every distributor's code is a QR from ``/cgi-bin/qrcode/create`` whose scene string is
``d:<CODE>`` (the public referral code, so the scene names no database id). Scanning it
sends the shop ``subscribe`` with ``EventKey=qrscene_d:<CODE>`` (not yet a fan) or ``SCAN``
with ``EventKey=d:<CODE>`` (already a fan); the message server binds through the binding
service (wechat-protocol.md §2).

- Temporary QR codes (``QR_STR_SCENE``) last 30 days, WeChat's maximum, and are created
  again when less than a day is left, so a poster printed from the cache never carries a
  code about to die. Creating them is unlimited.
- Permanent ones (``QR_LIMIT_STR_SCENE``) are for top distributors only: WeChat allows
  100,000 per account, ever. "Top" is the setting ``WECHAT_PERMANENT_QR_MIN_GRADE_RANK``
  (a grade rank; unset = nobody). Past the cap the distributor gets a temporary code.

The cache is ``distributor_qrcodes`` (one temporary and one permanent row per
distributor). Services flush; the caller commits.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import quote

from flask import current_app
from sqlalchemy import func, select
from wechatpy.exceptions import WeChatClientException

from app.core.sql import dialect_insert
from app.core.time import utcnow
from app.distribution.distributors import active_distributor_by_code
from app.distribution.models import Distributor, Grade
from app.extensions import db
from app.wechat.clients import get_wechat_client
from app.wechat.models import DistributorQrcode

log = logging.getLogger(__name__)

SCENE_PREFIX = "d:"
TEMPORARY_SECONDS = 30 * 86400  # 2592000, WeChat's maximum for a temporary code
RENEW_BEFORE = timedelta(days=1)
PERMANENT_CAP = 100_000  # WeChat's limit on permanent codes per account


class QrcodeError(Exception):
    """WeChat would not make a QR code (the caller shows a retry message)."""


def scene_for(distributor: Distributor) -> str:
    """The scene string a distributor's QR code carries: ``d:<CODE>``."""
    return f"{SCENE_PREFIX}{distributor.code}"


def distributor_for_scene(scene: str | None) -> Distributor | None:
    """The active distributor a scene names, or None (unknown, other scenes, disabled)."""
    scene = (scene or "").strip()
    if not scene.startswith(SCENE_PREFIX):
        return None
    return active_distributor_by_code(scene[len(SCENE_PREFIX) :])


def showqrcode_url(ticket: str) -> str:
    """The QR image for ``ticket``: ``{WECHAT_MP_BASE}/cgi-bin/showqrcode?ticket=...``."""
    base = current_app.config["WECHAT_MP_BASE"].rstrip("/")
    return f"{base}/cgi-bin/showqrcode?ticket={quote(ticket, safe='')}"


def is_top_distributor(distributor: Distributor) -> bool:
    """Whether this distributor gets a permanent code (see the module docstring)."""
    min_rank = current_app.config.get("WECHAT_PERMANENT_QR_MIN_GRADE_RANK")
    if min_rank is None or distributor.grade_id is None:
        return False
    grade = db.session.get(Grade, distributor.grade_id)
    return grade is not None and grade.rank >= int(min_rank)


def permanent_count() -> int:
    """How many permanent codes the account has used."""
    return db.session.scalar(
        select(func.count()).select_from(DistributorQrcode).where(DistributorQrcode.permanent)
    )


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        from datetime import UTC

        return moment.replace(tzinfo=UTC)
    return moment


def _cached(distributor_id: int, permanent: bool) -> DistributorQrcode | None:
    return db.session.scalar(
        select(DistributorQrcode).where(
            DistributorQrcode.distributor_id == distributor_id,
            DistributorQrcode.permanent == permanent,
        )
    )


def qrcode_for(
    distributor: Distributor, *, permanent: bool | None = None, now: datetime | None = None
) -> DistributorQrcode:
    """The distributor's QR code, from the cache or freshly made by WeChat.

    ``permanent`` defaults to ``is_top_distributor``. Raises ``QrcodeError`` when WeChat
    refuses or cannot be reached.
    """
    now = now or utcnow()
    if permanent is None:
        permanent = is_top_distributor(distributor)
    if permanent:
        row = _cached(distributor.id, True)
        if row is not None:
            return row
        if permanent_count() < PERMANENT_CAP:
            try:
                return _create(distributor, True, now)
            except QrcodeError:
                # e.g. WeChat counts codes made outside this shop: fall back, never fail.
                log.warning("permanent QR refused for distributor %s", distributor.id)
        else:
            log.warning(
                "permanent QR cap reached; distributor %s gets a temporary one", distributor.id
            )
    row = _cached(distributor.id, False)
    expires = _aware(row.expires_at) if row else None
    if row is not None and expires is not None and expires - now > RENEW_BEFORE:
        return row
    return _create(distributor, False, now)


def _create(distributor: Distributor, permanent: bool, now: datetime) -> DistributorQrcode:
    scene = scene_for(distributor)
    body: dict = {
        "action_name": "QR_LIMIT_STR_SCENE" if permanent else "QR_STR_SCENE",
        "action_info": {"scene": {"scene_str": scene}},
    }
    if not permanent:
        body["expire_seconds"] = TEMPORARY_SECONDS
    try:
        result = get_wechat_client().qrcode.create(body)
    except WeChatClientException as err:
        raise QrcodeError(f"qrcode/create failed: {err.errcode} {err.errmsg}") from err
    ticket = result.get("ticket") if isinstance(result, dict) else None
    if not ticket or len(ticket) > 256:
        raise QrcodeError("qrcode/create returned no usable ticket")
    expires_at = None
    if not permanent:
        seconds = int(result.get("expire_seconds") or TEMPORARY_SECONDS)
        expires_at = now + timedelta(seconds=seconds)
    values = {
        "scene": scene,
        "ticket": ticket,
        "url": str(result.get("url") or "")[:256],
        "expires_at": expires_at,
        "created_at": now,
    }
    # Two requests making the same distributor's code at once: the later one wins, and
    # both tickets work until they expire, so either is fine to hand out.
    db.session.execute(
        dialect_insert(DistributorQrcode)
        .values(distributor_id=distributor.id, permanent=permanent, **values)
        .on_conflict_do_update(index_elements=["distributor_id", "permanent"], set_=values)
    )
    db.session.flush()
    return db.session.scalar(
        select(DistributorQrcode)
        .where(
            DistributorQrcode.distributor_id == distributor.id,
            DistributorQrcode.permanent == permanent,
        )
        .execution_options(populate_existing=True)
    )
