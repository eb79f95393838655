"""Helpers that build 云仓 worlds: region agents (区域代理) and 订货商 levels."""

from __future__ import annotations

from app.cloud import agents as svc
from app.cloud.merchants import (
    create_merchant,
    place_merchant_order,
)
from app.cloud.models import OrderingMerchant, RegionAgent
from app.cloud.pricing import (
    get_cloud_settings,
    save_levels,
)
from app.extensions import db
from app.orders.models import Order
from app.orders.services import ItemRequest, place_order
from tests.support.commissions import (
    earned,
)

NANSHAN, FUTIAN, DONGCHENG = "440305", "440304", "110101"


GUANGDONG, SHENZHEN = "440000", "440300"


def rates(province=100, city=200, district=300, **more) -> None:
    """Shop dividend rates in bp (committed)."""
    svc.update_cloud_settings(
        {"province_bp": province, "city_bp": city, "district_bp": district, **more}, owner=True
    )
    db.session.commit()


def assigned(make, level: str, code: str, nickname: str = "代理") -> RegionAgent:
    """An active agent of a region, assigned by staff (committed)."""
    agent = svc.assign_region(make.user(nickname=nickname).id, level, code, "staff:1")
    db.session.commit()
    return agent


def three_agents(make) -> dict[str, RegionAgent]:
    return {
        "province": assigned(make, "province", GUANGDONG, "省代"),
        "city": assigned(make, "city", SHENZHEN, "市代"),
        "district": assigned(make, "district", NANSHAN, "区代"),
    }


def order_to(make, district_code: str, *, price_fen=9999, quantity=1, product=None, user=None):
    """A committed unpaid order shipped to ``district_code``."""
    from app import regions

    user = user or make.user(nickname="王小明")
    product = product or make.product(price_fen=price_fen, stock=1000)
    where = regions.resolve(district_code)
    address = make.address(
        user,
        name="王小明",
        phone="13800000001",
        province=where.province.name,
        city=where.city.name,
        district=where.district.name,
        district_code=district_code,
        detail="一号",
    )
    order = place_order(user.id, [ItemRequest(product.skus[0].id, quantity)], address.id)
    db.session.commit()
    return order


LEVELS = [
    {"level": 1, "name": "总代", "discount_bp": 4000},
    {"level": 2, "name": "省代", "discount_bp": 3000},
    {"level": 3, "name": "市代", "discount_bp": 2000},
    {"level": 4, "name": "县代", "discount_bp": 1000},
    {"level": 5, "name": "店主", "discount_bp": 500},
]


def levels() -> None:
    """The five demo levels: retail ¥100 → L1 ¥60, L2 ¥70, L3 ¥80, L4 ¥90, L5 ¥95."""
    save_levels(LEVELS)
    db.session.commit()


def precedence(value: str) -> None:
    get_cloud_settings().precedence = value
    db.session.commit()


def merchant(make, level: int, parent: OrderingMerchant | None = None, nickname: str = "订货商"):
    """An active ordering merchant (committed)."""
    row = create_merchant(
        make.user(nickname=nickname).id, level, parent.id if parent else None, "staff:1"
    )
    db.session.commit()
    return row


def three_level_chain(make) -> tuple[OrderingMerchant, OrderingMerchant, OrderingMerchant]:
    """(L1, L2, L3): L3's parent is L2, whose parent is L1."""
    top = merchant(make, 1, nickname="总代老王")
    middle = merchant(make, 2, top, nickname="省代老李")
    low = merchant(make, 3, middle, nickname="市代小张")
    return top, middle, low


def differences(order_id: int) -> dict[int, int]:
    """{merchant's distributor id: fen} of the order's price-difference entries."""
    return {
        int(key.split("@")[1]): fen
        for key, fen in earned(order_id).items()
        if key.startswith("price_difference@")
    }


def merchant_order(m: OrderingMerchant, sku_id: int, quantity: int = 1) -> Order:
    order = place_merchant_order(
        m,
        [ItemRequest(sku_id, quantity)],
        name="李四",
        phone="13900000000",
        district_code="440305",
        detail="科技园2号",
    )
    db.session.commit()
    return order
