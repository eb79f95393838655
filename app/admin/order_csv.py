"""Orders as CSV for Excel: UTF-8 with a BOM, money as yuan text, no formulas.

Excel guesses: without the BOM it reads UTF-8 Chinese as mojibake; a cell starting with
``= + - @`` (or a tab or carriage return) is run as a formula, so an order remark like
``=HYPERLINK(...)`` typed by a customer would execute on the merchant's computer (OWASP
"CSV injection"). Such cells get a leading apostrophe. Long digit strings (order numbers,
phone numbers) would be turned into numbers and lose digits (2.02611E+19), so they get a
leading tab, which Excel keeps as text; digit-only values cannot be formulas.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from sqlalchemy import Select
from sqlalchemy.orm import selectinload

from app.core.money import format_yuan
from app.core.time import shop_time_text
from app.extensions import db
from app.orders.models import Order
from app.orders.states import ORDER_STATUS_LABELS

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BATCH = 500

HEADER = [
    "订单号",
    "下单时间",
    "状态",
    "收货人",
    "手机号",
    "省份",
    "城市",
    "区县",
    "区划代码",
    "详细地址",
    "商品",
    "件数",
    "商品金额",
    "运费",
    "订单金额",
    "实付金额",
    "已退款",
    "快递公司",
    "快递单号",
    "付款时间",
    "发货时间",
    "完成时间",
    "买家备注",
]


def safe_cell(value: object) -> str:
    """One cell as text Excel will show, never evaluate."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    if len(text) >= 11 and text.isdecimal():
        return "\t" + text
    return text


def _money(fen: int | None) -> str:
    return format_yuan(fen or 0, symbol=False)


def _time(value) -> str:
    return shop_time_text(value, "%Y-%m-%d %H:%M:%S")


def order_row(order: Order) -> list[str]:
    """The CSV cells of one order (already made safe)."""
    items = "；".join(
        f"{line.title}{'（' + line.spec_text + '）' if line.spec_text else ''} ×{line.quantity}"
        for line in order.lines
    )
    cells = [
        order.number,
        _time(order.created_at),
        ORDER_STATUS_LABELS.get(order.status, order.status),
        order.receiver_name,
        order.receiver_phone,
        order.province,
        order.city,
        order.district,
        order.district_code,
        order.address_detail,
        items,
        sum(line.quantity for line in order.lines),
        _money(order.items_fen),
        _money(order.shipping_fen),
        _money(order.total_fen),
        _money(order.paid_fen),
        _money(order.refunded_fen),
        order.carrier or "",
        order.tracking_number or "",
        _time(order.paid_at),
        _time(order.shipped_at),
        _time(order.completed_at),
        order.remark,
    ]
    return [safe_cell(cell) for cell in cells]


def _orders(query: Select) -> Iterator[Order]:
    """Every order of ``query``, in its order, loaded a batch of ids at a time."""
    ids = list(db.session.scalars(query.with_only_columns(Order.id)))
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        rows = db.session.scalars(
            query.where(Order.id.in_(chunk)).options(selectinload(Order.lines))
        ).all()
        yield from rows
        db.session.expunge_all()  # a large export must not keep every order in the session


def csv_lines(query: Select) -> Iterable[str]:
    """The CSV document of ``query``'s orders, piece by piece, starting with the BOM."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(HEADER)
    yield BOM + flush()
    for order in _orders(query):
        writer.writerow(order_row(order))
        yield flush()
