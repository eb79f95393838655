"""Flask-WTF forms of the order pages: ship, refund review, order settings.

Carrier and tracking number are checked again by ``app.orders.shipping`` (the Open API
calls the same service), so the form only offers the choices and carries the CSRF token.
"""

from __future__ import annotations

from wtforms import IntegerField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, ValidationError

from app.admin.forms import AdminForm
from app.core.money import format_yuan, parse_yuan
from app.orders.shipping import CARRIERS

MAX_SHIPPING_FEE_FEN = 100_000  # ¥1000: anything above is surely a typo
MAX_FREE_OVER_FEN = 10_000_000  # ¥100000
MAX_UNPAID_ORDERS = 20  # more only lets one customer hold more stock


class ShipForm(AdminForm):
    """Carrier and tracking number for a paid order."""

    carrier = SelectField(
        "快递公司",
        choices=[SelectChoice("", "请选择快递公司")]
        + [SelectChoice(code, name) for code, name in CARRIERS.items()],
        default="",
    )
    tracking_number = StringField("快递单号", validators=[Length(max=64, message="快递单号过长")])


class RejectRefundForm(AdminForm):
    """Why a refund is refused; the customer sees it."""

    reason = StringField(
        "拒绝原因",
        validators=[DataRequired("请填写拒绝原因"), Length(max=200, message="最多 200 个字")],
    )


class YuanField(StringField):
    """An amount typed in yuan (``12.5``); ``fen`` holds the parsed integer after validation."""

    fen: int | None = None

    def __init__(self, *args, max_fen: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_fen = max_fen

    def pre_validate(self, form) -> None:
        try:
            self.fen = parse_yuan(self.data or "")
        except ValueError as exc:
            self.fen = None
            raise ValidationError(str(exc)) from None
        if self.fen > self.max_fen:
            raise ValidationError(f"不能超过 {format_yuan(self.max_fen)}")


class OrderSettingsForm(AdminForm):
    """The shop's order settings (owner only)."""

    shipping_fee = YuanField("运费（元）", max_fen=MAX_SHIPPING_FEE_FEN)
    free_shipping_over = YuanField("满额包邮（元）", max_fen=MAX_FREE_OVER_FEN)
    pay_timeout_minutes = IntegerField(
        "未付款自动取消（分钟）",
        validators=[
            InputRequired("请填写未付款自动取消时间"),
            NumberRange(min=5, max=1440, message="需为 5-1440 分钟"),
        ],
    )
    max_unpaid_orders = IntegerField(
        "每人未付款订单上限（笔）",
        validators=[
            InputRequired("请填写每人未付款订单上限"),
            NumberRange(min=1, max=MAX_UNPAID_ORDERS, message=f"需为 1-{MAX_UNPAID_ORDERS} 笔"),
        ],
    )
    auto_complete_days = IntegerField(
        "发货后自动确认收货（天）",
        validators=[
            InputRequired("请填写自动确认收货天数"),
            NumberRange(min=1, max=60, message="需为 1-60 天"),
        ],
    )
