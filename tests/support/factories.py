"""Test data builders. Each commits, like an edge would, so live servers see the rows.

Call inside an app context (the ``make`` fixture gives one).
"""

from __future__ import annotations

import itertools
from functools import cache

from app.accounts.models import Staff, User
from app.catalog.models import Category, Product, Sku
from app.core.time import utcnow
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.orders.models import Address

_seq = itertools.count(1)


def category(name: str | None = None, sort: int = 0) -> Category:
    """A category with a unique name."""
    row = Category(name=name or f"分类{next(_seq)}", sort=sort)
    db.session.add(row)
    db.session.commit()
    return row


def product(
    title: str | None = None,
    *,
    category: Category | None = None,
    price_fen: int = 1990,
    stock: int = 10,
    specs: dict[str, list[str]] | None = None,
    on_shelf: bool = True,
    featured: bool = False,
) -> Product:
    """A product with one SKU, or one SKU per combination of ``specs`` values."""
    row = Product(
        title=title or f"测试商品{next(_seq)}",
        category=category,
        on_shelf=on_shelf,
        featured=featured,
        spec_names=list(specs or {}),
    )
    combos = list(itertools.product(*specs.values())) if specs else [()]
    for values in combos:
        row.skus.append(
            Sku(
                specs=dict(zip(specs or {}, values, strict=True)),
                price_fen=price_fen,
                original_price_fen=price_fen + 1000,
                stock=stock,
            )
        )
    db.session.add(row)
    db.session.commit()
    return row


def user(openid: str | None = None, nickname: str = "测试粉丝") -> User:
    """A customer as WeChat OAuth would have made it."""
    row = User(openid=openid or f"o_test_{next(_seq)}", nickname=nickname)
    db.session.add(row)
    db.session.commit()
    return row


def staff(username: str | None = None, password: str = "password123", role: str = "staff") -> Staff:
    """A merchant staff account with a known password."""
    row = Staff(username=username or f"staff{next(_seq)}", role=role)
    row.password_hash = _password_hash(password)
    db.session.add(row)
    db.session.commit()
    return row


@cache
def _password_hash(password: str) -> str:
    """The real ``set_password`` hash of ``password``, made once per test process: scrypt
    costs ~0.15 s of CPU, and hundreds of tests make staff with the same password. Each
    sign-in still checks it with scrypt; tests of ``set_password`` itself call it."""
    row = Staff()
    row.set_password(password)
    return row.password_hash


def address(owner: User | int, **fields) -> Address:
    """A delivery address of ``owner`` (a user or user id): 广东省深圳市南山区, phone
    13800000000 + user id - 1 and street 科技园<user id>号 unless ``fields`` say otherwise
    (``district_code`` should match the names: region dividends key on it)."""
    user_id = owner if isinstance(owner, int) else owner.id
    # Each customer their own phone and street (user 1: 13800000000, 科技园1号), so honest
    # customers never look like a ring to the risk checks (app/risk/signals.py).
    values = {
        "name": "张三",
        "phone": str(13800000000 + user_id - 1),
        "province": "广东省",
        "city": "深圳市",
        "district": "南山区",
        "district_code": "440305",
        "detail": f"科技园{user_id}号",
        **fields,
    }
    row = Address(user_id=user_id, **values)
    db.session.add(row)
    db.session.commit()
    return row


def ledger_entry(
    distributor_id: int,
    amount_fen: int,
    *,
    kind: str = "task_reward",
    state: str = "settled",
    **fields,
) -> LedgerEntry:
    """A ledger entry written directly: test money with no order behind it (by default a
    settled task reward, which counts as withdrawable). A settled entry gets ``settled_at``
    (now, unless given), as every writer of the ledger sets it."""
    if state in ("settled", "withdrawn"):
        fields.setdefault("settled_at", utcnow())
    row = LedgerEntry(
        distributor_id=distributor_id, kind=kind, amount_fen=amount_fen, state=state, **fields
    )
    db.session.add(row)
    db.session.commit()
    return row
