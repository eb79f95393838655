"""Admin pages for the catalog: categories, products (with SKUs and images), stock."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload
from wtforms import SelectChoice

from app.admin import bp, staging
from app.admin.auth import safe_next
from app.admin.decorators import staff_required
from app.admin.forms import ActionForm, CategoryForm, ImageUploadForm, ProductForm, StockForm
from app.admin.images import (
    CheckedImage,
    add_images,
    check_image,
    delete_image,
    move_image,
    remove_files,
)
from app.admin.product_form import build_rows, grid_from_form, grid_from_product, skus_from_grid
from app.catalog.audit_targets import NEW_PRODUCT, PRODUCT_WITH_SKUS
from app.catalog.models import Category, Product, ProductImage, Sku
from app.catalog.rich_text import to_html
from app.catalog.services import (
    CatalogError,
    ProductInput,
    create_product,
    delete_category,
    save_category,
    set_on_shelf,
    set_stock,
    update_product,
)
from app.core.audit import audited, row
from app.core.params import bounded_int, page_arg
from app.extensions import db

PER_PAGE = 20
LOW_STOCK = 5


def _categories() -> list[Category]:
    return list(db.session.scalars(select(Category).order_by(Category.sort, Category.id)))


def _back(default: str) -> str:
    """Where a POST button returns to: its ``next`` field when local to the admin."""
    target = request.form.get("next")
    return safe_next(target) if target else default


# --- categories -------------------------------------------------------------------------


@bp.get("/categories")
@staff_required
def categories():
    """List categories with a form to add one."""
    return _render_categories(CategoryForm(formdata=None))


def _render_categories(
    form: CategoryForm, status: int = 200, error: str | None = None, error_id: int | None = None
):
    counts = dict(
        db.session.execute(
            select(Product.category_id, func.count(Product.id)).group_by(Product.category_id)
        ).all()
    )
    return (
        render_template(
            "admin/categories.html",
            categories=_categories(),
            counts=counts,
            form=form,
            action=ActionForm(),
            error=error,
            error_id=error_id,
        ),
        status,
    )


@bp.post("/categories")
@staff_required
def category_create():
    """Add a category."""
    form = CategoryForm()
    if not form.validate():
        return _render_categories(form, 422, _first_error(form))
    try:
        category = save_category(form.name.data, form.sort.data or 0)
        db.session.commit()
    except CatalogError as exc:
        db.session.rollback()
        return _render_categories(form, 422, exc.message)
    except IntegrityError:  # the same name added at the same moment elsewhere
        db.session.rollback()
        return _render_categories(form, 409, "该分类名称已存在")
    flash(f"已添加分类“{category.name}”", "success")
    return redirect(url_for("admin.categories"))


@bp.post("/categories/<int:category_id>")
@staff_required
def category_update(category_id: int):
    """Rename or re-sort a category."""
    category = db.get_or_404(Category, category_id)
    form = CategoryForm()
    if not form.validate():
        return _render_categories(CategoryForm(formdata=None), 422, _first_error(form), category_id)
    try:
        save_category(form.name.data, form.sort.data or 0, category=category)
    except CatalogError as exc:
        db.session.rollback()
        return _render_categories(CategoryForm(formdata=None), 422, exc.message, category_id)
    db.session.commit()
    flash("分类已保存", "success")
    return redirect(url_for("admin.categories"))


@bp.post("/categories/<int:category_id>/delete")
@staff_required
def category_delete(category_id: int):
    """Delete a category (its products stay, uncategorised)."""
    category = db.get_or_404(Category, category_id)
    name = category.name
    delete_category(category)
    db.session.commit()
    flash(f"已删除分类“{name}”，其中的商品变为未分类", "success")
    return redirect(url_for("admin.categories"))


# --- products ---------------------------------------------------------------------------


@bp.get("/products")
@staff_required
def products():
    """Products with search, category and shelf filters, paginated."""
    q = (request.args.get("q") or "").strip()[:50]
    category = request.args.get("category", "")
    shelf = request.args.get("shelf", "")
    query = select(Product)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
        code_match = select(Sku.product_id).where(Sku.code.ilike(pattern, escape="\\"))
        query = query.where(
            or_(Product.title.ilike(pattern, escape="\\"), Product.id.in_(code_match))
        )
    if category == "none":
        query = query.where(Product.category_id.is_(None))
    elif bounded_int(category):
        query = query.where(Product.category_id == bounded_int(category))
    if shelf == "on":
        query = query.where(Product.on_shelf.is_(True))
    elif shelf == "off":
        query = query.where(Product.on_shelf.is_(False))
    query = query.order_by(Product.sort, Product.id.desc()).options(
        selectinload(Product.skus), selectinload(Product.images), joinedload(Product.category)
    )
    pagination = db.paginate(query, page=page_arg(), per_page=PER_PAGE, error_out=False)
    return render_template(
        "admin/products.html",
        pagination=pagination,
        categories=_categories(),
        q=q,
        category=category,
        shelf=shelf,
        action=ActionForm(),
        low_stock=LOW_STOCK,
    )


def _product_form(product: Product | None, from_request: bool) -> ProductForm:
    """The product form, filled from the POST (``from_request``) or from ``product``."""
    form = ProductForm() if from_request else ProductForm(formdata=None, obj=product)
    form.category_id.choices = [SelectChoice(0, "未分类")] + [
        SelectChoice(c.id, c.name) for c in _categories()
    ]
    if not from_request:
        form.category_id.data = (product.category_id if product else None) or 0
    return form


@dataclass
class Staging:
    """The new-product form's staged images: the signed token, its batch, and the files
    this very POST brought (checked, not yet written)."""

    token: str
    batch: str
    checked: list[CheckedImage] = field(default_factory=list)
    error: str | None = None

    @classmethod
    def from_request(cls) -> Staging:
        token = request.form.get("staging") or ""
        batch = staging.batch_of(token)
        if batch is None:  # none yet, forged or expired: start a new batch
            token = staging.new_token()
            batch = staging.batch_of(token)
        found = cls(token, batch)
        files = [f for f in request.files.getlist("images") if f and f.filename]
        limit = current_app.config["MAX_IMAGE_BYTES"]
        try:
            found.checked = [
                check_image(f.stream.read(limit + 1), f.filename or "", limit) for f in files
            ]
        except CatalogError as exc:
            found.error = exc.message
        return found

    def keep(self) -> None:
        """Stage this POST's files (the form is shown again) and commit them."""
        if not self.checked:
            return
        checked, self.checked = self.checked, []
        try:
            _rows, written = staging.stage(self.batch, checked, current_app.config["UPLOAD_DIR"])
        except CatalogError as exc:
            db.session.rollback()
            self.error = exc.message
            return
        try:
            db.session.commit()
        except Exception:
            db.session.rollback()
            remove_files(written)
            raise

    def attach(self, product: Product) -> list:
        """Move the staged batch and this POST's files into ``product``'s gallery (flush)."""
        staging.attach(product, self.batch)
        return add_images(product, self.checked, current_app.config["UPLOAD_DIR"])


@bp.route("/products/new", methods=["GET", "POST"])
@staff_required
@audited("product.create", NEW_PRODUCT)
def product_create():
    """Create a product with its specifications and SKUs; images chosen before the first
    save are staged under the form's signed token and attached on save (app/admin/staging.py)."""
    form = _product_form(None, from_request=request.method == "POST")
    if request.method == "GET":
        token = staging.new_token()
        return _render_product(
            form, None, grid_from_product(None), staged=Staging(token, staging.batch_of(token))
        )
    return _save_product(form, None, Staging.from_request())


@bp.route("/products/<int:product_id>/edit", methods=["GET", "POST"])
@staff_required
@audited("product.update", PRODUCT_WITH_SKUS)
def product_edit(product_id: int):
    """Edit a product; its images are managed on the same page."""
    product = db.get_or_404(Product, product_id)
    form = _product_form(product, from_request=request.method == "POST")
    if request.method == "GET":
        return _render_product(form, product, grid_from_product(product))
    return _save_product(form, product)


def _save_product(form: ProductForm, product: Product | None, staged: Staging | None = None):
    grid = grid_from_form(request.form)
    render = functools.partial(_render_product, staged=staged)
    if request.form.get("action") == "build":
        # No-script fallback: the server builds the SKU rows from the typed values.
        try:
            grid = build_rows(grid)
        except CatalogError as exc:
            return render(form, product, grid, exc.message, 422)
        return render(form, product, grid)
    if not form.validate():
        return render(form, product, grid, _first_error(form), 422)
    if staged is not None and staged.error:
        return render(form, product, grid, staged.error, 422)
    try:
        spec_names, skus = skus_from_grid(grid)
        data = ProductInput(
            title=form.title.data,
            subtitle=form.subtitle.data or "",
            description=form.description.data or "",
            category_id=form.category_id.data or None,
            on_shelf=form.on_shelf.data,
            featured=form.featured.data,
            sort=form.sort.data or 0,
            purchase_limit=form.purchase_limit.data or 0,
            spec_names=spec_names,
            skus=skus,
        )
        if product is None:
            product = create_product(data)
        else:
            update_product(product, data)
        written = staged.attach(product) if staged is not None else []
    except CatalogError as exc:
        db.session.rollback()
        # After the rollback the product (if any) is expired; reload it for the page.
        if product is not None and product.id is not None:
            product = db.session.get(Product, product.id)
        else:
            product = None
        return render(form, product, grid, exc.message, 422)
    try:
        db.session.commit()
    except IntegrityError:
        # Another save took the same SKU code between our check and the commit.
        db.session.rollback()
        remove_files(written)
        product = db.session.get(Product, product.id) if product.id else None
        return render(form, product, grid, "SKU 编码已被其他商品使用，请检查后重试", 409)
    flash("商品已保存", "success")
    return redirect(url_for("admin.product_edit", product_id=product.id))


def _render_product(
    form, product, grid, error: str | None = None, status: int = 200, staged: Staging | None = None
):
    if staged is not None:
        staged.keep()  # the files of a POST that did not save are not lost
        error = error or staged.error
    return (
        render_template(
            "admin/product_form.html",
            form=form,
            product=product,
            grid=grid,
            error=error,
            description_html=to_html(form.description.data),
            staging_token=staged.token if staged is not None else "",
            staged_images=staging.staged(staged.batch) if staged is not None else [],
            upload=ImageUploadForm(formdata=None),
            action=ActionForm(),
            max_image_mb=current_app.config["MAX_IMAGE_BYTES"] // (1024 * 1024),
        ),
        status,
    )


@bp.post("/products/<int:product_id>/shelf")
@staff_required
@audited("product.shelf", PRODUCT_WITH_SKUS)
def product_shelf(product_id: int):
    """Put a product on (``on_shelf=1``) or off the shelf."""
    product = db.get_or_404(Product, product_id)
    on = request.form.get("on_shelf") == "1"
    set_on_shelf(product, on)
    db.session.commit()
    flash(f"“{product.title}”已{'上架' if on else '下架'}", "success")
    return redirect(_back(url_for("admin.products")))


# --- images -----------------------------------------------------------------------------


@bp.post("/products/<int:product_id>/images")
@staff_required
def product_images_upload(product_id: int):
    """Add uploaded images to the gallery; every file is checked before any is kept."""
    product = db.get_or_404(Product, product_id)
    files = [f for f in request.files.getlist("images") if f and f.filename]
    error = None
    if not files:
        error = "请选择要上传的图片"
    else:
        limit = current_app.config["MAX_IMAGE_BYTES"]
        try:
            checked = [
                check_image(f.stream.read(limit + 1), f.filename or "", limit) for f in files
            ]
            written = add_images(product, checked, current_app.config["UPLOAD_DIR"])
        except CatalogError as exc:
            db.session.rollback()
            error = exc.message
        else:
            try:
                db.session.commit()
            except Exception:
                db.session.rollback()
                remove_files(written)
                raise
            flash(f"已上传 {len(checked)} 张图片", "success")
            return redirect(url_for("admin.product_edit", product_id=product.id) + "#images")
    product = db.session.get(Product, product_id)
    form = _product_form(product, from_request=False)
    return _render_product(form, product, grid_from_product(product), error, 422)


def _image_of(product_id: int, image_id: int) -> tuple[Product, ProductImage]:
    product = db.get_or_404(Product, product_id)
    image = db.get_or_404(ProductImage, image_id)
    if image.product_id != product.id:
        abort(404)
    return product, image


@bp.post("/products/<int:product_id>/images/<int:image_id>/delete")
@staff_required
def product_image_delete(product_id: int, image_id: int):
    """Remove an image from the gallery and delete its file."""
    _, image = _image_of(product_id, image_id)
    path = delete_image(image, current_app.config["UPLOAD_DIR"])
    db.session.commit()
    remove_files([path])  # only once the row is gone for good
    flash("图片已删除", "success")
    return redirect(url_for("admin.product_edit", product_id=product_id) + "#images")


@bp.post("/products/<int:product_id>/images/<int:image_id>/move")
@staff_required
def product_image_move(product_id: int, image_id: int):
    """Move an image one place earlier or later (the first one is the cover)."""
    product, image = _image_of(product_id, image_id)
    move_image(product, image, -1 if request.form.get("direction") == "up" else 1)
    db.session.commit()
    return redirect(url_for("admin.product_edit", product_id=product_id) + "#images")


# --- stock ------------------------------------------------------------------------------


@bp.get("/stock")
@staff_required
def stock():
    """Every SKU with its stock, editable inline; ``?low=1`` shows only low stock."""
    return _render_stock()


def _render_stock(error: str | None = None, error_id: int | None = None, status: int = 200):
    low = request.args.get("low") == "1"
    q = (request.args.get("q") or "").strip()[:50]
    query = select(Sku).join(Sku.product)
    if low:
        query = query.where(Sku.stock <= LOW_STOCK)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
        query = query.where(
            or_(Product.title.ilike(pattern, escape="\\"), Sku.code.ilike(pattern, escape="\\"))
        )
    query = query.order_by(Sku.stock, Product.id, Sku.id).options(joinedload(Sku.product))
    pagination = db.paginate(query, page=page_arg(), per_page=50, error_out=False)
    return render_template(
        "admin/stock.html",
        pagination=pagination,
        low=low,
        q=q,
        low_stock=LOW_STOCK,
        form=StockForm(formdata=None),
        error=error,
        error_id=error_id,
    ), status


@bp.post("/skus/<int:sku_id>/stock")
@staff_required
@audited("sku.set_stock", row(Sku, "sku_id"))
def sku_stock(sku_id: int):
    """Set one SKU's stock to an absolute count."""
    sku = db.get_or_404(Sku, sku_id)
    form = StockForm()
    back = _back(url_for("admin.stock"))
    what = f"{sku.product.title}（{sku.spec_text}）"
    if not form.validate():
        return _render_stock(f"{what}：{_first_error(form)}", sku.id, 422)
    try:
        set_stock(sku, form.stock.data)
    except CatalogError as exc:
        db.session.rollback()
        return _render_stock(f"{what}：{exc.message}", sku_id, 422)
    db.session.commit()
    flash(f"{what}库存已改为 {sku.stock}", "success")
    return redirect(back)


def _first_error(form) -> str:
    """The first validation message of ``form``, prefixed by the field's label."""
    for name, errors in form.errors.items():
        if errors:
            field = getattr(form, name, None)
            label = field.label.text if field is not None else ""
            return f"{label}：{errors[0]}" if label else str(errors[0])
    return "提交的内容有误"
