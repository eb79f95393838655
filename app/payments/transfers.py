"""WeChat Pay 商家转账 (transfer bills, the flow since 2025-01-15): create, query, cancel.

Through wechatpayv3's own ``mch_transfer_bills``, ``mch_transfer_bills_query`` and
``mch_transfer_bills_cancel`` (2.0.4 has them), so requests are signed and answers
verified by the library, aimed at ``WECHAT_PAY_API_BASE`` like every other Pay call
(``app.payments.client.get_pay``). Failures become ``PaymentError``.

A bill is created in ``WAIT_USER_CONFIRM``: the distributor confirms receipt in WeChat
(``wx.requestMerchantTransfer`` with ``mchId``, ``appId`` and the bill's ``package_info``)
within 24 hours, or WeChat cancels the bill and the money stays with the merchant.
Creating again with the same ``out_bill_no`` returns the same bill, which is what makes a
retry after a timeout safe.

Bill states: ACCEPTED, PROCESSING, WAIT_USER_CONFIRM, TRANSFERING (in flight), SUCCESS,
FAIL, CANCELING, CANCELLED. Final ones: SUCCESS, FAIL, CANCELLED.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import current_app

from app.payments.client import PaymentError, call_pay, get_pay, uses_sandbox

DEFAULT_SCENE_ID = "1000"  # 现金营销
REMARK = "分销佣金提现"  # the user sees it when receiving; at most 32 characters
MIN_TRANSFER_FEN = 10  # WeChat refuses transfers under 0.1 yuan
NAME_REQUIRED_FEN = 200_000  # from 2,000 yuan WeChat wants the payee's real name

FINAL_STATES = frozenset({"SUCCESS", "FAIL", "CANCELLED"})

# What WeChat makes each transfer scene report (转账场景报备信息), and what the payee sees.
SCENE_REPORTS: dict[str, tuple[list[dict[str, str]], str]] = {
    "1000": (
        [
            {"info_type": "活动名称", "info_content": "分销推广佣金"},
            {"info_type": "奖励说明", "info_content": "推广订单佣金提现"},
        ],
        "现金奖励",
    ),
    "1005": (
        [
            {"info_type": "岗位类型", "info_content": "分销员"},
            {"info_type": "报酬说明", "info_content": "推广订单佣金"},
        ],
        "劳务报酬",
    ),
}

TRANSFER_MESSAGES = {
    "NOT_ENOUGH": "商户运营账户余额不足，请充值后重试",
    "NOT_FOUND": "转账单不存在",
    "INVALID_REQUEST": "转账请求无效",
    "NO_AUTH": "商户未开通商家转账或无此场景权限",
    "FREQUENCY_LIMITED": "请求太频繁，请稍后再试",
}


def _translate(err: PaymentError) -> PaymentError:
    message = TRANSFER_MESSAGES.get(err.code)
    if message and not err.message.startswith("微信支付："):
        err.message = message
    return err


def transfer_notify_url() -> str:
    """Where WeChat sends the bill's final-state notice."""
    return f"{current_app.config['PUBLIC_BASE_URL']}/pay/transfer-notify"


def create_transfer_bill(
    out_bill_no: str, openid: str, amount_fen: int, remark: str = REMARK
) -> dict:
    """Create (or, same out_bill_no, fetch again) a transfer bill of ``amount_fen`` to ``openid``.

    Returns WeChat's answer: ``out_bill_no``, ``transfer_bill_no``, ``create_time``,
    ``state`` and, while it waits for the payee, ``package_info``.
    """
    if amount_fen < MIN_TRANSFER_FEN:
        raise PaymentError("amount_too_small", "微信转账金额不能低于 0.1 元", status=400)
    if amount_fen >= NAME_REQUIRED_FEN:
        raise PaymentError(
            "name_required", "单笔 2000 元及以上的微信转账需收款人实名，请改为人工打款", 400
        )
    if not openid:
        raise PaymentError("no_openid", "收款人没有微信 openid，无法转账", status=400)
    scene = str(current_app.config.get("WECHAT_TRANSFER_SCENE_ID") or DEFAULT_SCENE_ID)
    reports, perception = SCENE_REPORTS.get(scene, ([], ""))
    try:
        _status, data = call_pay(
            get_pay().mch_transfer_bills,
            out_bill_no=out_bill_no,
            transfer_scene_id=scene,
            openid=openid,
            transfer_amount=amount_fen,
            transfer_remark=remark[:32],
            user_recv_perception=perception or None,
            transfer_scene_report_infos=reports,
            notify_url=transfer_notify_url(),
        )
    except PaymentError as err:
        raise _translate(err) from None
    if not isinstance(data, dict) or not data.get("state"):
        raise PaymentError("pay_bad_response", "微信支付未返回转账单，请稍后再试")
    return data


def query_transfer_bill(out_bill_no: str) -> dict | None:
    """WeChat's view of a bill (``state``, ``transfer_amount``...), None if unknown."""
    try:
        _status, data = call_pay(get_pay().mch_transfer_bills_query, out_bill_no=out_bill_no)
    except PaymentError as err:
        if err.code == "NOT_FOUND" or err.http_status == 404:
            return None
        raise _translate(err) from None
    return data if isinstance(data, dict) else None


def cancel_transfer_bill(out_bill_no: str) -> dict:
    """Ask WeChat to cancel a bill the payee has not confirmed yet; return its answer
    (``state`` CANCELING or CANCELLED)."""
    try:
        _status, data = call_pay(get_pay().mch_transfer_bills_cancel, out_bill_no=out_bill_no)
    except PaymentError as err:
        raise _translate(err) from None
    return data if isinstance(data, dict) else {}


def confirm_params(package_info: str) -> dict[str, str]:
    """What the H5 page passes to ``wx.requestMerchantTransfer`` (JS-SDK) for a bill."""
    cfg = current_app.config
    return {"mchId": cfg["WECHAT_PAY_MCHID"], "appId": cfg["WECHAT_APPID"], "package": package_info}


def sandbox_confirm_url(package_info: str, return_url: str | None = None) -> str | None:
    """The stand-in's confirm-receipt page for a bill (development, outside real WeChat).

    None when transfers go to the real WeChat Pay: then only ``requestMerchantTransfer``
    inside WeChat can confirm.
    """
    if not uses_sandbox():
        return None
    base = current_app.config["WECHAT_PAY_API_BASE"].rstrip("/")
    query = {"package": package_info}
    if return_url:
        query["return_url"] = return_url
    return f"{base}/sandbox/transfer-confirm?{urlencode(query)}"
