"""联系客服: what the merchant set for customers to reach them (one row, id 1).

Any of: a phone number (tapped to call), a WeChat ID (copied), a QR image of a WeChat or
WeCom account (long-pressed in WeChat to add), and the official account's 客服 message
(the customer sends a message to the official account; a note says what to expect).
Functions flush; the caller commits.
"""

from __future__ import annotations

import re

from app.extensions import db
from app.shop.models import CustomerService

PHONE_RE = re.compile(r"^[0-9+][0-9\- ]{4,30}$")
WECHAT_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{5,19}$")  # WeChat's own rule for 微信号
QR_NAME_RE = re.compile(r"^[A-Za-z0-9]{1,80}\.(jpg|png|webp)$")
MAX_NOTE = 200


class ContactError(ValueError):
    """A contact setting that cannot be saved: ``field`` names the input, message in Chinese."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def get_contact() -> CustomerService:
    """The settings row, or an empty unsaved one (nothing configured yet)."""
    return db.session.get(CustomerService, 1) or CustomerService(
        id=1, phone="", wechat_id="", qr_image="", kefu_enabled=False, kefu_note=""
    )


def clean_contact(phone: str, wechat_id: str, kefu_note: str) -> tuple[str, str, str]:
    """The inputs trimmed and checked; ContactError names the first bad one."""
    phone = " ".join((phone or "").split())
    wechat_id = (wechat_id or "").strip()
    kefu_note = (kefu_note or "").strip()
    if phone and not PHONE_RE.match(phone):
        raise ContactError("phone", "电话号码格式不正确（数字、+、- 和空格，5-31 位）")
    if wechat_id and not WECHAT_ID_RE.match(wechat_id):
        raise ContactError("wechat_id", "微信号需 6-20 位，以字母开头，可含字母、数字、_ 和 -")
    if len(kefu_note) > MAX_NOTE:
        raise ContactError("kefu_note", f"说明最多 {MAX_NOTE} 个字")
    return phone, wechat_id, kefu_note


def save_contact(
    phone: str,
    wechat_id: str,
    kefu_enabled: bool,
    kefu_note: str,
    qr_image: str | None = None,
) -> CustomerService:
    """Save the contact settings; ``qr_image`` None keeps the current image, "" removes it."""
    phone, wechat_id, kefu_note = clean_contact(phone, wechat_id, kefu_note)
    if qr_image and not QR_NAME_RE.match(qr_image):
        raise ContactError("qr_image", "二维码图片无效")
    row = db.session.get(CustomerService, 1)
    if row is None:
        row = CustomerService(id=1)
        db.session.add(row)
    row.phone, row.wechat_id = phone, wechat_id
    row.kefu_enabled, row.kefu_note = bool(kefu_enabled), kefu_note
    if qr_image is not None:
        row.qr_image = qr_image
    db.session.flush()
    return row
