"""WeChat Pay 商家转账 (transfer bills) in the stand-in: create, query, cancel, confirm, notice.

Requests are checked with the merchant's signature and answers signed with the WeChat Pay
key exactly as in ``pay.py`` (whose keys, notice settings and delivery log this module
shares). A new bill waits in WAIT_USER_CONFIRM with a ``package_info``; the same
out_bill_no with the same content returns the same bill (WeChat's idempotency).

Development: ``GET /sandbox/transfer-confirm?package=...`` is the sheet
``wx.requestMerchantTransfer`` would show; 确认收款 makes the bill SUCCESS, 取消 makes it
CANCELLED, and either way a signed, AES-256-GCM encrypted MCHTRANSFER.BILL.FINISHED notice
goes to the bill's notify_url, retried on WeChat's schedule like payment notices.

Test switches under ``/_sandbox/transfer/bills/<out_bill_no>/``: ``confirm``, ``fail``,
``expire`` (24 h elapsed: CANCELLED) and ``GET`` of the bill.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field

from flask import Blueprint, Flask, current_app, jsonify, redirect, render_template, request

from app.wechat.sandbox.pay import (
    PayState,
    _answer,
    _check_authorization,
    _error,
    _json_body,
    _now_text,
    _safe_return_url,
    _valid_url,
    deliver_notice,
    encrypt_resource,
    get_pay_state,
    signed_headers,
)

bp = Blueprint("sandbox_transfer", __name__)

OUT_BILL_NO_RE = re.compile(r"^[A-Za-z0-9]{5,32}$")
MIN_AMOUNT = 10  # 0.1 yuan
NAME_REQUIRED = 200_000  # 2,000 yuan
FINAL = ("SUCCESS", "FAIL", "CANCELLED")
EVENT_TYPE = "MCHTRANSFER.BILL.FINISHED"
# What each scene must report (转账场景报备信息); other scenes are not checked.
SCENE_REPORTS = {"1000": {"活动名称", "奖励说明"}, "1005": {"岗位类型", "报酬说明"}}


@dataclass
class Bill:
    """One transfer bill as WeChat Pay knows it."""

    mch_id: str
    appid: str
    out_bill_no: str
    transfer_bill_no: str
    transfer_scene_id: str
    openid: str
    transfer_amount: int
    transfer_remark: str
    notify_url: str | None
    package_info: str
    create_time: str
    update_time: str
    state: str = "WAIT_USER_CONFIRM"
    fail_reason: str = ""

    def as_json(self) -> dict:
        """The query answer."""
        data = {
            "mch_id": self.mch_id,
            "out_bill_no": self.out_bill_no,
            "transfer_bill_no": self.transfer_bill_no,
            "appid": self.appid,
            "state": self.state,
            "transfer_amount": self.transfer_amount,
            "transfer_remark": self.transfer_remark,
            "openid": self.openid,
            "create_time": self.create_time,
            "update_time": self.update_time,
        }
        if self.fail_reason:
            data["fail_reason"] = self.fail_reason
        return data

    def create_answer(self) -> dict:
        data = {
            "out_bill_no": self.out_bill_no,
            "transfer_bill_no": self.transfer_bill_no,
            "create_time": self.create_time,
            "state": self.state,
        }
        if self.state == "WAIT_USER_CONFIRM":
            data["package_info"] = self.package_info
        if self.fail_reason:
            data["fail_reason"] = self.fail_reason
        return data

    def notice_resource(self) -> dict:
        data = {
            "out_bill_no": self.out_bill_no,
            "transfer_bill_no": self.transfer_bill_no,
            "state": self.state,
            "mch_id": self.mch_id,
            "transfer_amount": self.transfer_amount,
            "openid": self.openid,
            "create_time": self.create_time,
            "update_time": self.update_time,
        }
        if self.fail_reason:
            data["fail_reason"] = self.fail_reason
        return data


@dataclass
class TransferState:
    """The stand-in's bills, by out_bill_no and by package, behind one lock."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    bills: dict[str, Bill] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)


def get_transfer_state() -> TransferState:
    return current_app.extensions["wechat_sandbox_transfer"]


def init_transfer(app: Flask) -> None:
    """Attach the transfer state and blueprint to the stand-in ``app`` (after ``init_pay``)."""
    app.extensions["wechat_sandbox_transfer"] = TransferState()
    app.register_blueprint(bp)


# --- notices ------------------------------------------------------------------------------


def transfer_notice(
    pay: PayState, resource: dict, timestamp: int | None = None, notice_id: str | None = None
) -> tuple[dict[str, str], str]:
    """A MCHTRANSFER.BILL.FINISHED notice as WeChat sends it: (headers, body).

    Tests use it with the stand-in's keys to send genuine, stale and forged variants.
    """
    body = json.dumps(
        {
            "id": notice_id or str(uuid.uuid4()),
            "create_time": _now_text(),
            "resource_type": "encrypt-resource",
            "event_type": EVENT_TYPE,
            "summary": "商家转账单据终态通知",
            "resource": encrypt_resource(pay.apiv3_key, resource, "mch_payment", "mch_payment"),
        },
        ensure_ascii=False,
    )
    headers = signed_headers(pay.keys, body, timestamp)
    headers["Content-Type"] = "application/json"
    return headers, body


def _deliver(pay: PayState, url: str, resource: dict) -> None:
    """Send one transfer notice until a 2xx, exactly as payment notices are sent."""
    deliver_notice(
        pay,
        url,
        EVENT_TYPE,
        lambda notice_id: transfer_notice(pay, resource, notice_id=notice_id),
    )


def finish_bill(
    pay: PayState, transfers: TransferState, out_bill_no: str, state: str, reason: str = ""
) -> Bill | None:
    """Move a waiting bill to a final ``state`` and notify; None if not waiting."""
    with transfers.lock:
        bill = transfers.bills.get(out_bill_no)
        if bill is None or bill.state in FINAL:
            return None
        bill.state = state
        bill.fail_reason = reason
        bill.update_time = _now_text()
        resource = bill.notice_resource()
        url = bill.notify_url
    if url:
        threading.Thread(target=_deliver, args=(pay, url, resource), daemon=True).start()
    return bill


# --- APIv3 ----------------------------------------------------------------------------------


@bp.before_request
def _authorize():
    if request.path.startswith("/v3/"):
        return _check_authorization()
    return None


def _check_reports(scene: str, infos) -> str | None:
    if not isinstance(infos, list) or not all(isinstance(i, dict) for i in infos):
        return "transfer_scene_report_infos 格式不正确"
    needed = SCENE_REPORTS.get(scene)
    if needed is None:
        return None
    given = {i.get("info_type") for i in infos if i.get("info_content")}
    missing = needed - given
    return f"转账场景报备信息缺少：{'、'.join(sorted(missing))}" if missing else None


@bp.post("/v3/fund-app/mch-transfer/transfer-bills")
def create_bill():
    """发起转账: a WAIT_USER_CONFIRM bill with package_info (same out_bill_no: same bill)."""
    pay = get_pay_state()
    transfers = get_transfer_state()
    body = _json_body()
    if body is None:
        return _error(400, "PARAM_ERROR", "请求体不是合法的 JSON")
    if body.get("appid") != pay.appid:
        return _error(400, "PARAM_ERROR", "appid和mch_id不匹配")
    out_bill_no = body.get("out_bill_no")
    if not isinstance(out_bill_no, str) or not OUT_BILL_NO_RE.match(out_bill_no):
        return _error(400, "PARAM_ERROR", "out_bill_no 格式不正确")
    scene = body.get("transfer_scene_id")
    if not isinstance(scene, str) or not scene.isdecimal():
        return _error(400, "PARAM_ERROR", "transfer_scene_id 格式不正确")
    openid = body.get("openid")
    if not isinstance(openid, str) or not 1 <= len(openid) <= 64:
        return _error(400, "PARAM_ERROR", "openid 格式不正确")
    amount = body.get("transfer_amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        return _error(400, "PARAM_ERROR", "transfer_amount 必须为正整数（分）")
    if amount < MIN_AMOUNT:
        return _error(400, "PARAM_ERROR", "转账金额不能低于0.1元")
    if amount >= NAME_REQUIRED and not body.get("user_name"):
        return _error(400, "PARAM_ERROR", "转账金额大于等于2000元时，必须传入收款用户姓名")
    remark = body.get("transfer_remark")
    if not isinstance(remark, str) or not 1 <= len(remark) <= 32:
        return _error(400, "PARAM_ERROR", "transfer_remark 长度应为1-32个字符")
    notify_url = body.get("notify_url")
    if notify_url is not None and not _valid_url(notify_url):
        return _error(400, "PARAM_ERROR", "notify_url 格式不正确")
    problem = _check_reports(scene, body.get("transfer_scene_report_infos", []))
    if problem:
        return _error(400, "PARAM_ERROR", problem)
    with transfers.lock:
        bill = transfers.bills.get(out_bill_no)
        if bill is not None:
            if (bill.openid, bill.transfer_amount) != (openid, amount):
                return _error(400, "INVALID_REQUEST", "商户单号重复，且请求参数与原单据不一致")
            return _answer(bill.create_answer())
        now = _now_text()
        bill = Bill(
            mch_id=pay.mchid,
            appid=pay.appid,
            out_bill_no=out_bill_no,
            transfer_bill_no="1330" + str(secrets.randbelow(10**36)).zfill(36),
            transfer_scene_id=scene,
            openid=openid,
            transfer_amount=amount,
            transfer_remark=remark,
            notify_url=notify_url,
            package_info="ABBQO+oYAAABAAAAAAB" + secrets.token_urlsafe(48),
            create_time=now,
            update_time=now,
        )
        transfers.bills[out_bill_no] = bill
        transfers.packages[bill.package_info] = out_bill_no
        return _answer(bill.create_answer())


@bp.get("/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/<out_bill_no>")
def query_bill(out_bill_no: str):
    """商户单号查询转账单."""
    transfers = get_transfer_state()
    with transfers.lock:
        bill = transfers.bills.get(out_bill_no)
        if bill is None:
            return _error(404, "NOT_FOUND", "记录不存在")
        return _answer(bill.as_json())


@bp.get("/v3/fund-app/mch-transfer/transfer-bills/transfer-bill-no/<transfer_bill_no>")
def query_bill_by_wechat_no(transfer_bill_no: str):
    """微信单号查询转账单."""
    transfers = get_transfer_state()
    with transfers.lock:
        bill = next(
            (b for b in transfers.bills.values() if b.transfer_bill_no == transfer_bill_no), None
        )
        if bill is None:
            return _error(404, "NOT_FOUND", "记录不存在")
        return _answer(bill.as_json())


@bp.post("/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/<out_bill_no>/cancel")
def cancel_bill(out_bill_no: str):
    """撤销转账: only before the payee confirms; the bill is CANCELLED and notified."""
    pay = get_pay_state()
    transfers = get_transfer_state()
    with transfers.lock:
        bill = transfers.bills.get(out_bill_no)
        if bill is None:
            return _error(404, "NOT_FOUND", "记录不存在")
        if bill.state in ("SUCCESS", "FAIL"):
            return _error(400, "INVALID_REQUEST", "转账单已是终态，不能撤销")
        if bill.state != "CANCELLED":
            finish_bill(pay, transfers, out_bill_no, "CANCELLED", "商户撤销")
        return _answer(
            {
                "out_bill_no": bill.out_bill_no,
                "transfer_bill_no": bill.transfer_bill_no,
                "state": bill.state,
                "update_time": bill.update_time,
            }
        )


# --- the confirm sheet (development) and test switches ------------------------------------


def _bill_for_package(package: str) -> Bill | None:
    transfers = get_transfer_state()
    with transfers.lock:
        return transfers.bills.get(transfers.packages.get(package or "", ""))


@bp.get("/sandbox/transfer-confirm")
def confirm_page():
    """The sheet ``requestMerchantTransfer`` shows: 确认收款 or 取消."""
    bill = _bill_for_package(request.args.get("package", ""))
    return_url = _safe_return_url(request.args.get("return_url"))
    if bill is None:
        return render_template(
            "sandbox/transfer_confirm.html", bill=None, error="转账单不存在"
        ), 404
    return render_template(
        "sandbox/transfer_confirm.html", bill=bill, return_url=return_url, error=None
    )


@bp.post("/sandbox/transfer-confirm")
def confirm_submit():
    """确认收款 pays the bill, 取消 cancels it; both notify. Then back to the shop."""
    pay = get_pay_state()
    transfers = get_transfer_state()
    package = request.form.get("package", "")
    return_url = _safe_return_url(request.form.get("return_url"))
    bill = _bill_for_package(package)
    if bill is None:
        return render_template(
            "sandbox/transfer_confirm.html", bill=None, error="转账单不存在"
        ), 404
    confirm = request.form.get("action") == "confirm"
    if bill.state != "WAIT_USER_CONFIRM":
        return render_template(
            "sandbox/transfer_confirm.html",
            bill=bill,
            return_url=return_url,
            error="该转账已处理或已过期",
        ), 409
    finish_bill(
        pay,
        transfers,
        bill.out_bill_no,
        "SUCCESS" if confirm else "CANCELLED",
        "" if confirm else "用户取消收款",
    )
    result = "ok" if confirm else "cancel"
    if return_url:
        sep = "&" if "?" in return_url else "?"
        return redirect(f"{return_url}{sep}transfer_result={result}", code=303)
    return render_template("sandbox/transfer_done.html", bill=bill, result=result)


def _switch(out_bill_no: str, state: str, reason: str):
    bill = finish_bill(get_pay_state(), get_transfer_state(), out_bill_no, state, reason)
    if bill is None:
        return jsonify(error="unknown or not waiting"), 409
    return jsonify(bill.as_json())


@bp.post("/_sandbox/transfer/bills/<out_bill_no>/confirm")
def confirm_without_page(out_bill_no: str):
    """The payee confirms receipt, as the sheet's 确认收款 would."""
    return _switch(out_bill_no, "SUCCESS", "")


@bp.post("/_sandbox/transfer/bills/<out_bill_no>/expire")
def expire(out_bill_no: str):
    """24 hours passed without confirmation: WeChat cancels the bill and notifies."""
    return _switch(out_bill_no, "CANCELLED", "超过24小时未确认收款，已自动撤销")


@bp.post("/_sandbox/transfer/bills/<out_bill_no>/fail")
def fail(out_bill_no: str):
    """The transfer fails at WeChat (e.g. the payee's account is restricted)."""
    body = _json_body() or {}
    return _switch(out_bill_no, "FAIL", str(body.get("reason") or "收款用户账户异常"))


@bp.get("/_sandbox/transfer/bills/<out_bill_no>")
def show(out_bill_no: str):
    """The bill as stored, package included (tests)."""
    transfers = get_transfer_state()
    with transfers.lock:
        bill = transfers.bills.get(out_bill_no)
        if bill is None:
            return jsonify(error="unknown"), 404
        return jsonify(bill.as_json() | {"package_info": bill.package_info})
