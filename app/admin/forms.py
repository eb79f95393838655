"""Flask-WTF forms of the admin. Each carries a CSRF token (CSRFProtect is global too).

The SKU table of the product form is a variable grid the page's script builds; it is
read by ``app.admin.product_form`` from the raw form data, validated there and by the
catalog services, never trusted.
"""

from __future__ import annotations

from functools import cache

from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.i18n import get_translations
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.catalog.services import MAX_PURCHASE_LIMIT


@cache
def _zh_translations():
    return get_translations(["zh"])


class AdminForm(FlaskForm):
    """Base of every admin form: WTForms' own messages in Chinese (no Babel needed)."""

    class Meta:
        def get_translations(self, form):
            return _zh_translations()


def _max(n: int) -> Length:
    return Length(max=n, message=f"最多 {n} 个字")


class LoginForm(AdminForm):
    """Staff sign-in."""

    username = StringField("用户名", validators=[DataRequired("请输入用户名"), _max(64)])
    password = PasswordField("密码", validators=[DataRequired("请输入密码"), _max(256)])
    next = HiddenField()


class ActionForm(AdminForm):
    """A bare form for POST buttons (logout, delete, shelf toggle): just the CSRF token."""


class CategoryForm(AdminForm):
    """Create or rename/re-sort a category."""

    name = StringField("分类名称", validators=[DataRequired("请输入分类名称"), _max(32)])
    sort = IntegerField(
        "排序",
        default=0,
        validators=[
            Optional(),
            NumberRange(min=-100000, max=100000, message="排序需为 -100000 到 100000 的整数"),
        ],
    )


class ProductForm(AdminForm):
    """The plain fields of a product; specifications and SKUs come from the grid."""

    title = StringField("商品名称", validators=[DataRequired("请输入商品名称"), _max(100)])
    subtitle = StringField("副标题", validators=[_max(200)])
    category_id = SelectField("分类", coerce=int, default=0)
    description = TextAreaField("商品详情", validators=[_max(20000)])
    featured = BooleanField("首页推荐")
    on_shelf = BooleanField("上架销售", default=True)
    sort = IntegerField(
        "排序",
        default=0,
        validators=[
            Optional(),
            NumberRange(min=-100000, max=100000, message="排序需为 -100000 到 100000 的整数"),
        ],
    )
    purchase_limit = IntegerField(
        "每人限购（件）",
        default=0,
        validators=[
            Optional(),
            NumberRange(
                min=0, max=MAX_PURCHASE_LIMIT, message=f"限购需为 0-{MAX_PURCHASE_LIMIT} 件"
            ),
        ],
    )


class ImageUploadForm(AdminForm):
    """Several image files for a product's gallery."""

    images = MultipleFileField("商品图片")


class StockForm(AdminForm):
    """An absolute stock count for one SKU (a stock-take)."""

    stock = IntegerField(
        "库存",
        validators=[
            InputRequired("请输入库存"),
            NumberRange(min=0, max=10_000_000, message="库存需为 0-10000000 的整数"),
        ],
    )


class PasswordResetForm(AdminForm):
    """The owner gives a staff member a new password."""

    password = PasswordField("新密码", validators=[DataRequired("请输入新密码"), _max(256)])


class PasswordChangeForm(AdminForm):
    """A staff member changes their own password (the current one first)."""

    current = PasswordField("当前密码", validators=[DataRequired("请输入当前密码"), _max(256)])
    password = PasswordField("新密码", validators=[DataRequired("请输入新密码"), _max(256)])


class StaffForm(AdminForm):
    """A new staff account (owner only)."""

    username = StringField("用户名", validators=[DataRequired("请输入用户名"), _max(64)])
    password = PasswordField("初始密码", validators=[DataRequired("请输入密码"), _max(256)])
    role = SelectField(
        "角色",
        choices=[SelectChoice("staff", "员工"), SelectChoice("owner", "店主")],
        default="staff",
    )
