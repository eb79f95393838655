"""The distributor side of the customer API: join, my figures, ledger, withdrawals
(interfaces.md: ``/api/v1/distributor/...``; customers and team: ``distributor_people``).

Every endpoint reads the distributor of the signed-in customer, never an id from the
request, so a distributor can only ever see their own customers, team and money. A
refused request (``DistributionError``) answers its own 4xx code and Chinese message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Literal

from flask import current_app
from pydantic import BaseModel, Field, StrictInt
from spectree import Response

from app.accounts.guards import customer_id, customer_required
from app.api.blueprints import bp
from app.api.schemas import Body, ErrorResponse, PageInfo, PageQuery, Query
from app.api.spec import COOKIE, spec
from app.core.errors import ApiError
from app.distribution import centre
from app.distribution.distributors import (
    DistributionError,
    distributor_for_user,
    get_distribution_settings,
)
from app.distribution.models import Distributor, Withdrawal
from app.distribution.team import team_counts
from app.distribution.withdrawals import (
    AWAITING_CONFIRM,
    WITHDRAWAL_STATUS_LABELS,
    preview_fee,
    request_withdrawal,
)
from app.extensions import db
from app.ledger.balances import balances, entries_for, mask_name
from app.ledger.kinds import CENTRE_STATE_LABELS, entry_label
from app.payments.transfers import confirm_params, sandbox_confirm_url

TAGS = ["distributor"]
SECURITY = {COOKIE: []}
ERRORS = {"HTTP_401": ErrorResponse, "HTTP_403": ErrorResponse, "HTTP_404": ErrorResponse}
BODY_ERRORS = {
    **ERRORS,
    "HTTP_400": ErrorResponse,
    "HTTP_409": ErrorResponse,
    "HTTP_422": ErrorResponse,
    "HTTP_429": ErrorResponse,
}
MAX_AMOUNT_FEN = 10**10  # far above any balance; keeps the number inside a bigint

Amount = Annotated[
    StrictInt, Field(ge=1, le=MAX_AMOUNT_FEN, description="提现金额（含手续费），单位分")
]


# --- models -------------------------------------------------------------------------------


class ParentOut(BaseModel):
    name: str = Field(description="上级昵称（部分隐藏）")
    code: str


class GradeOut(BaseModel):
    id: int
    name: str


class DistributorMe(BaseModel):
    id: int
    code: str = Field(description="公开邀请码，链接参数 ?ref=CODE")
    status: str = Field(description="active / pending（审核中） / rejected / disabled")
    share_url: str = Field(description="推广链接：PUBLIC_BASE_URL/?ref=CODE")
    product_share_url_template: str = Field(
        description="商品推广链接格式，{product_id} 替换为商品 id"
    )
    parent: ParentOut | None
    grade: GradeOut | None
    pending_fen: int = Field(description="待结算")
    available_fen: int = Field(description="可提现")
    withdrawn_fen: int = Field(description="已提现")
    customers_count: int
    level1_count: int
    level2_count: int


class ApplyOut(BaseModel):
    status: str = Field(description="active：已成为分销员；pending：申请待审核")
    message: str
    distributor: DistributorMe


class LedgerEntryOut(BaseModel):
    id: int
    kind: str = Field(description="level_1 / level_2 / level_3 / withdrawal / reversal ...")
    kind_label: str
    amount_fen: int = Field(description="正数为收入，负数为扣回或提现")
    state: str = Field(description="pending / settled / withdrawn / reversed")
    state_label: str
    order_number: str | None
    buyer_name: str = Field(description="买家昵称（部分隐藏）")
    reason_not_available: str = Field(
        description="尚不可提现的原因，如 售后期至 12月3日；可提现时为空"
    )
    product_title: str = Field(description="商品名称（退款扣回：被扣回收益的商品）；无订单时为空")
    sku_text: str = Field(description="规格，如 青瓷")
    created_at: datetime


class LedgerQuery(PageQuery):
    status: Literal["pending", "settled", "withdrawn", "reversed"] | None = Field(
        None,
        description="pending 待结算 / settled 可提现（不含提现本身）/ withdrawn 已提现 / "
        "reversed 已失效；不传为全部",
    )


class LedgerPage(BaseModel):
    items: list[LedgerEntryOut]
    meta: PageInfo


class TransferConfirm(BaseModel):
    """wx.requestMerchantTransfer's own parameter names."""

    mchId: str
    appId: str
    package: str


class WithdrawalOut(BaseModel):
    id: int
    amount_fen: int
    fee_fen: int
    net_fen: int = Field(description="实际到账")
    status: str = Field(
        description="requested / approved / awaiting_confirm / paid / rejected / failed"
    )
    status_label: str
    channel: str
    review_note: str
    created_at: datetime
    confirm: TransferConfirm | None = Field(
        description="待确认收款时传给 wx.requestMerchantTransfer 的参数"
    )
    sandbox_confirm_url: str | None = Field(description="开发环境：本地替身的确认收款页")


class WithdrawalPage(BaseModel):
    available_fen: int
    withdraw_min_fen: int
    withdraw_fee_bp: int
    withdraw_daily_limit: int = Field(description="每天最多提现次数，0 为不限")
    items: list[WithdrawalOut]
    meta: PageInfo


class WithdrawalCreate(Body):
    amount_fen: Amount


class FeeQuery(Query):
    amount_fen: int = Field(ge=0, le=MAX_AMOUNT_FEN)


class FeeOut(BaseModel):
    amount_fen: int
    fee_fen: int
    net_fen: int
    fee_bp: int


# --- helpers ------------------------------------------------------------------------------


@contextmanager
def distribution_errors() -> Iterator[None]:
    """A refused change rolls back and answers with the service's code and message."""
    try:
        yield
    except DistributionError as err:
        db.session.rollback()
        raise ApiError(err.status, err.code, err.message) from None


def _mine() -> Distributor:
    distributor = distributor_for_user(customer_id())
    if distributor is None:
        raise ApiError(404, "not_distributor", "你还不是分销员")
    return distributor


def _base_url() -> str:
    return current_app.config["PUBLIC_BASE_URL"]


def me_out(d: Distributor) -> DistributorMe:
    """The distributor with balances, share links and counts."""
    money = balances(d.id)
    level1, level2, _total = team_counts(d.id)
    parent = d.parent
    return DistributorMe(
        id=d.id,
        code=d.code,
        status=d.status,
        share_url=centre.share_url(_base_url(), d.code),
        product_share_url_template=centre.share_url(_base_url(), d.code, "/product/{product_id}"),
        parent=ParentOut(name=mask_name(parent.user.nickname), code=parent.code)
        if parent is not None
        else None,
        grade=GradeOut(id=d.grade.id, name=d.grade.name) if d.grade is not None else None,
        pending_fen=money.pending_fen,
        available_fen=money.available_fen,
        withdrawn_fen=money.withdrawn_fen,
        customers_count=centre.customer_count(d.id),
        level1_count=level1,
        level2_count=level2,
    )


def withdrawal_out(w: Withdrawal, return_url: str | None = None) -> WithdrawalOut:
    """One withdrawal; with the confirm-receipt parameters while WeChat waits for them."""
    waiting = w.status == AWAITING_CONFIRM and bool(w.package_info)
    return WithdrawalOut(
        id=w.id,
        amount_fen=w.amount_fen,
        fee_fen=w.fee_fen,
        net_fen=w.net_fen,
        status=w.status,
        status_label=WITHDRAWAL_STATUS_LABELS.get(w.status, w.status),
        channel=w.channel,
        review_note=w.review_note,
        created_at=w.created_at,
        confirm=TransferConfirm(**confirm_params(w.package_info)) if waiting else None,
        sandbox_confirm_url=sandbox_confirm_url(w.package_info, return_url) if waiting else None,
    )


# --- endpoints ----------------------------------------------------------------------------


@bp.post("/distributor/apply")
@customer_required
@spec.validate(resp=Response(HTTP_200=ApplyOut, **BODY_ERRORS), tags=TAGS, security=SECURITY)
def distributor_apply():
    """Become a distributor (open mode; threshold reached) or apply (apply mode). No body,
    never a fee. Already one: answers the current state."""
    with distribution_errors():
        d = centre.apply_to_join(customer_id())
        db.session.commit()
    message = "你已成为分销员" if d.status == "active" else "申请已提交，请等待商家审核"
    return ApplyOut(status=d.status, message=message, distributor=me_out(d))


@bp.get("/distributor/me")
@customer_required
@spec.validate(resp=Response(HTTP_200=DistributorMe, **ERRORS), tags=TAGS, security=SECURITY)
def distributor_me():
    """My code, share link, parent, grade and balances; 404 ``not_distributor``."""
    return me_out(_mine())


@bp.get("/distributor/ledger")
@customer_required
@spec.validate(resp=Response(HTTP_200=LedgerPage, **ERRORS), tags=TAGS, security=SECURITY)
def distributor_ledger(query: LedgerQuery):
    """My ledger, newest first, with product, SKU and why each entry is not withdrawable
    yet; ``status`` filters by state (as the centre's 佣金明细 tabs)."""
    d = _mine()
    rows = entries_for(d.id, query.page, query.per_page + 1, status=query.status)
    return LedgerPage(
        items=[
            LedgerEntryOut(
                id=r.entry.id,
                kind=r.entry.kind,
                kind_label=entry_label(r.entry),
                amount_fen=r.entry.amount_fen,
                state=r.entry.state,
                state_label=CENTRE_STATE_LABELS.get(r.entry.state, r.entry.state),
                order_number=r.order_number,
                buyer_name=r.buyer_name,
                reason_not_available=r.reason_not_available,
                product_title=r.product_title,
                sku_text=r.sku_text,
                created_at=r.entry.created_at,
            )
            for r in rows[: query.per_page]
        ],
        meta=PageInfo.of(query, len(rows)),
    )


@bp.get("/distributor/withdrawals")
@customer_required
@spec.validate(resp=Response(HTTP_200=WithdrawalPage, **ERRORS), tags=TAGS, security=SECURITY)
def distributor_withdrawals(query: PageQuery):
    """My withdrawals with their statuses, and the withdrawal rules."""
    d = _mine()
    settings = get_distribution_settings()
    rows = centre.withdrawals_of(d.id, query.page, query.per_page + 1)
    return_url = _base_url().rstrip("/") + "/distributor/withdraw"
    return WithdrawalPage(
        available_fen=balances(d.id).available_fen,
        withdraw_min_fen=settings.withdraw_min_fen,
        withdraw_fee_bp=settings.withdraw_fee_bp,
        withdraw_daily_limit=settings.withdraw_daily_limit,
        items=[withdrawal_out(w, return_url) for w in rows[: query.per_page]],
        meta=PageInfo.of(query, len(rows)),
    )


@bp.get("/distributor/withdrawals/fee")
@customer_required
@spec.validate(resp=Response(HTTP_200=FeeOut, **ERRORS), tags=TAGS, security=SECURITY)
def distributor_withdrawal_fee(query: FeeQuery):
    """The fee and the net amount of a withdrawal of ``amount_fen``, before submitting."""
    _mine()
    fee = preview_fee(query.amount_fen)
    return FeeOut(
        amount_fen=fee.amount_fen, fee_fen=fee.fee_fen, net_fen=fee.net_fen, fee_bp=fee.fee_bp
    )


@bp.post("/distributor/withdrawals")
@customer_required
@spec.validate(resp=Response(HTTP_201=WithdrawalOut, **BODY_ERRORS), tags=TAGS, security=SECURITY)
def distributor_withdraw(json: WithdrawalCreate):
    """Ask to withdraw ``amount_fen`` (fee included): minimum, daily limit and balance are
    checked; concurrent requests never overdraw."""
    d = _mine()
    with distribution_errors():
        w = request_withdrawal(d, json.amount_fen)
        db.session.commit()
    return withdrawal_out(w), 201
