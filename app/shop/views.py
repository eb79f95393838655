"""H5 shop pages for customers inside WeChat's browser: thin views over app.shop.queries."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.catalog.page_settings import service_promises
from app.catalog.rich_text import to_html
from app.core.branding import shop_name
from app.core.params import MAX_ID
from app.discounts.models import TimedDiscount
from app.discounts.present import countdown, discounted_page_data
from app.discounts.pricing import running_discount, unit_prices
from app.extensions import db
from app.orders.limits import held_by_unpaid
from app.shop import cache, queries
from app.shop.contact import get_contact
from app.shop.product_page import shipping_line, sold_count, sold_text
from app.shop.search_history import clear_recent, hot_terms, recent_terms, record_search

bp = Blueprint("shop", __name__)
bp.record_once(lambda _state: cache.install_listeners())


@bp.context_processor
def shop_globals() -> dict:
    """Names every shop template may use."""
    return {"shop_name": shop_name()}


def _page_arg() -> int:
    """The ?page= number; anything that is not a positive integer means page 1.

    Pages past queries.MAX_PAGE are all the same empty page (one cache entry, not many).
    """
    raw = request.args.get("page", "1")
    if not (raw.isdecimal() and 0 < len(raw) <= 6 and int(raw) > 0):
        return 1
    return min(int(raw), queries.MAX_PAGE + 1)


@bp.get("/")
def home():
    """Home: search box, category chips, featured products (page 1) and the product list.

    Like the other catalog pages it is the same for every visitor, so it is cached per
    catalog version (app/shop/cache.py).
    """
    page = _page_arg()
    return cache.cached(
        ("home", page),
        lambda: render_template(
            "shop/home.html",
            categories=queries.list_categories(),
            featured=queries.featured_products() if page == 1 else [],
            listing=queries.list_products(page),
            tab="home",
        ),
    )


@bp.get("/categories")
def categories():
    """Every category with its count of products on the shelf."""
    return cache.cached(
        ("categories",),
        lambda: render_template(
            "shop/categories.html", categories=queries.categories_with_counts(), tab="categories"
        ),
    )


def _render_category(category_id: int, page: int) -> str | None:
    found = queries.get_category(category_id)
    if found is None:
        return None
    return render_template(
        "shop/category.html",
        category=found,
        categories=queries.list_categories(),
        listing=queries.list_products(page, category_id=found.id),
        tab="categories",
    )


@bp.get("/category/<int:category_id>")
def category(category_id: int):
    """One category's products on the shelf."""
    page = _page_arg()
    html = cache.cached(
        ("category", category_id, page), lambda: _render_category(category_id, page)
    )
    if html is None:
        abort(404, description="分类不存在")
    return html


def _customer_id() -> int | None:
    person = current_user
    if person.is_authenticated and not getattr(person, "is_staff", False):
        return person.id
    return None


@bp.get("/search")
def search():
    """Search titles and subtitles. An empty query shows the search page itself: the
    customer's recent searches and the hot terms; no result suggests products instead.

    Not cached (it depends on who searches); page 1 of a search is counted in the history.
    """
    q = queries.clean_search_query(request.args.get("q"))
    page = _page_arg()
    listing = queries.search_products(q, page)
    user_id = _customer_id()
    if q and page == 1:
        record_search(q, user_id, found=not listing.is_empty)
        db.session.commit()
    suggestions = []
    if q and listing.is_empty:
        suggestions = queries.featured_products() or queries.list_products(1).items[:6]
    return render_template(
        "shop/search.html",
        q=q,
        listing=listing,
        categories=queries.list_categories() if not q else [],
        recent=recent_terms(user_id) if user_id and not q else [],
        hot=hot_terms(current_app.config.get("SEARCH_HOT_MIN_COUNT", 3)) if not q else [],
        suggestions=suggestions,
        tab="home",
    )


@bp.post("/search/recent/clear")
@login_required
def clear_recent_searches():
    """Forget the signed-in customer's recent searches (CSRF-checked form)."""
    user_id = _customer_id()
    if user_id is not None:
        clear_recent(user_id)
        db.session.commit()
    return redirect(url_for("shop.search"))


def _render_product_page(
    product_id: int, held: bool = False, sold: int = 0, discount: TimedDiscount | None = None
) -> tuple[str, tuple] | None:
    """The whole product page as HTML with the ids of its SKUs when the product is sold
    out (else ``()``), or None when the product is not for sale.

    ``held``: sold out, but unpaid orders hold stock that comes back unless they are paid
    in time; the page says so (已被抢光，仍有未付款订单) instead of a plain 售罄.
    """
    found = queries.get_product(product_id)
    if found is None or not found.skus:
        return None
    total_stock = found.total_stock
    summary, picker = queries.price_summary(found), queries.sku_picker_data(found)
    if discount is not None:  # prices now: the one rule in app/discounts/pricing.py
        summary, picker = discounted_page_data(found, unit_prices(found.skus), summary, picker)
    html = render_template(
        "shop/product.html",
        product=found,
        prices=summary,
        timed_discount=countdown(discount) if discount is not None else None,
        picker={**picker, "held": held},
        total_stock=total_stock,
        held=held,
        sold=sold_text(sold),
        shipping=shipping_line(summary["price_fen"]),
        promises=service_promises(),
        description=to_html(found.description),
    )
    return html, () if total_stock else tuple(sku.id for sku in found.skus)


@bp.get("/product/<int:product_id>")
def product(product_id: int):
    """Product detail with gallery, prices and the SKU picker. Off shelf or unknown: 404.

    The page is the same for every visitor, so it is cached per catalog version
    (app/shop/cache.py): the hot page of a shop shared in WeChat groups should not hit the
    database and the template engine on every view. See bench/README.md.

    Whether unpaid orders hold a sold-out product's stock is not part of the catalog (a
    payment changes it and no catalog row), so it is asked on every view of a sold-out
    page, outside the cache, and picks one of the page's two cached variants.

    The sales count (已售) is not a catalog row either: it is read on every view (one
    indexed sum, app/shop/product_page.py) and is part of the cache key, so a payment
    shows on the next view without invalidating anything.
    """
    if not 0 < product_id <= MAX_ID:  # before any query: PostgreSQL refuses such an integer
        abort(404, description="商品不存在或已下架")
    sold = sold_count(product_id)
    # A running timed discount changes the prices and adds a countdown: its id and version
    # are part of the key, so the page changes when one starts, ends or is edited.
    discount = running_discount(product_id)
    running = (discount.id, discount.version) if discount is not None else None
    page = cache.cached(
        ("product", product_id, sold, running),
        lambda: _render_product_page(product_id, False, sold, discount),
    )
    if page is None:
        abort(404, description="商品不存在或已下架")
    html, sold_out_skus = page
    if sold_out_skus and held_by_unpaid(sold_out_skus):
        held = cache.cached(
            ("product", product_id, sold, running, "held"),
            lambda: _render_product_page(product_id, True, sold, discount),
        )
        html = held[0] if held is not None else html
    return html


@bp.get("/my")
@login_required
def my():
    """The customer's own page: profile, order shortcuts, distributor entry (placeholders)."""
    person = current_user._get_current_object()
    if getattr(person, "is_staff", False):  # a merchant previewing the shop while signed in
        name, avatar = person.username, ""
    else:
        name, avatar = person.display_name, person.avatar_url
    return render_template(
        "shop/my.html", name=name, avatar=avatar, contact=get_contact(), tab="my"
    )
