"""The demo catalogue loaded by ``flask seed-demo``: categories, products, SKUs, images.

Idempotent: each row is looked up by its natural key (category name, SKU code) before
anything is inserted, so a second run changes nothing. Product images are drawn with Pillow
at seed time (no network, no shipped binaries) into UPLOAD_DIR. The function flushes; the
CLI command commits.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app
from PIL import Image, ImageDraw
from sqlalchemy import select

from app.catalog.models import Category, Product, ProductImage, Sku
from app.extensions import db
from app.posters.drawing import find_cjk_font, load_font

IMAGE_SIZE = 750

# Category name, sort, card colours (top-left, bottom-right) and the shape drawn on cards.
CATEGORIES = {
    "女装": (1, ("#f7b7c5", "#c86b98"), "circle"),
    "家居": (2, ("#b9d8c2", "#4f8a78"), "square"),
    "食品": (3, ("#ffd59a", "#e8743b"), "leaf"),
    "美妆": (4, ("#e3c6f5", "#8a5cc2"), "diamond"),
}


@dataclass
class DemoProduct:
    """One demo product. ``skus`` maps a tuple of spec values to (price, original, stock)."""

    key: str  # short latin key: SKU codes and image file names derive from it
    category: str
    title: str
    short: str  # the few characters drawn on the product card
    subtitle: str
    description: str
    skus: dict[tuple[str, ...], tuple[int, int, int]]
    spec_names: list[str] = field(default_factory=list)
    featured: bool = False
    on_shelf: bool = True
    images: int = 2


def _grid(
    names: list[list[str]], price, original, stock
) -> dict[tuple[str, ...], tuple[int, int, int]]:
    """Every combination of spec values, priced and stocked by the given callables."""
    return {
        combo: (price(combo), original(combo), stock(combo)) for combo in itertools.product(*names)
    }


# Listed oldest first: the shop lists newest first, so the home page mixes categories.
PRODUCTS: list[DemoProduct] = [
    DemoProduct(
        key="cardigan",
        category="女装",
        title="羊毛混纺针织开衫 慵懒风宽松外套",
        short="开衫",
        subtitle="羊毛混纺 · 软糯亲肤 · 秋冬必备",
        description="羊毛混纺面料，柔软亲肤。\n宽松版型，百搭慵懒。",
        spec_names=["颜色"],
        skus=_grid([["米白", "燕麦"]], lambda c: 19900, lambda c: 32900, lambda c: 20),
        on_shelf=False,
    ),
    DemoProduct(
        key="rice",
        category="食品",
        title="东北五常稻花香大米 5kg 当季新米",
        short="五常大米",
        subtitle="产地直发 · 粒粒饱满 · 真空包装",
        description=(
            "产自黑龙江五常，一年一季，生长期长达 145 天。\n"
            "米粒饱满，蒸煮后米香浓郁、软糯回甜。\n"
            "真空包装，开袋即是新米的味道。"
        ),
        skus={(): (6990, 8990, 320)},
    ),
    DemoProduct(
        key="mug",
        category="家居",
        title="北欧哑光陶瓷马克杯 380ml 办公室水杯",
        short="马克杯",
        subtitle="高温烧制 · 可进洗碗机 · 送杯盖",
        description=(
            "1280℃ 高温烧制，釉面细腻不挂色。\n"
            "380ml 容量，一杯咖啡刚刚好。\n"
            "适用微波炉与洗碗机，附赠实木杯盖。"
        ),
        spec_names=["颜色"],
        skus=_grid(
            [["雾霾蓝", "奶油白", "松石绿"]],
            lambda c: 3900,
            lambda c: 5900,
            lambda c: {"雾霾蓝": 58, "奶油白": 120, "松石绿": 9}[c[0]],
        ),
        featured=True,
        images=3,
    ),
    DemoProduct(
        key="mask",
        category="美妆",
        title="玻尿酸补水保湿面膜 10 片装",
        short="补水面膜",
        subtitle="深层补水 · 敏感肌可用 · 无酒精",
        description=(
            "每片含 25ml 精华液，三重玻尿酸层层补水。\n"
            "天丝膜布，轻薄服帖。\n"
            "无酒精、无香精，敏感肌也可放心使用。"
        ),
        skus={(): (9900, 15900, 260)},
        featured=True,
    ),
    DemoProduct(
        key="tshirt",
        category="女装",
        title="纯棉宽松短袖T恤 基础百搭打底衫",
        short="纯棉T恤",
        subtitle="新疆长绒棉 · 不易变形 · 多色可选",
        description=(
            "精选新疆长绒棉，260g 重磅面料，不透不起球。\n"
            "宽松落肩版型，一件单穿、叠穿都好看。\n"
            "建议 30℃ 以下水温洗涤。"
        ),
        spec_names=["颜色", "尺码"],
        skus=_grid(
            [["白色", "黑色", "燕麦色"], ["M", "L", "XL"]],
            lambda c: 5900,
            lambda c: 9900,
            lambda c: 40 if c[1] != "XL" else 15,
        ),
        images=3,
    ),
    DemoProduct(
        key="bedding",
        category="家居",
        title="日式水洗棉四件套 简约床单被套",
        short="四件套",
        subtitle="A类标准 · 越洗越软 · 亲肤透气",
        description=(
            "水洗棉工艺，柔软蓬松，婴幼儿 A 类标准。\n"
            "含被套、床单、枕套两只。\n"
            "1.5 米床：被套 200×230cm；1.8 米床：被套 220×240cm。"
        ),
        spec_names=["尺寸", "颜色"],
        skus=_grid(
            [["1.5米床", "1.8米床"], ["浅灰", "豆绿"]],
            lambda c: 29900 if c[0] == "1.5米床" else 33900,
            lambda c: 45900 if c[0] == "1.5米床" else 49900,
            lambda c: 18 if c[1] == "浅灰" else 7,
        ),
        images=3,
    ),
    DemoProduct(
        key="puer",
        category="食品",
        title="云南高山古树普洱茶 熟茶饼 357g",
        short="普洱茶",
        subtitle="勐海原料 · 十年陈香 · 送礼佳品",
        description=(
            "原料来自云南勐海高山古树，2014 年压制。\n"
            "汤色红浓透亮，入口醇厚顺滑，回甘持久。\n"
            "建议 100℃ 沸水冲泡，可冲泡 10 道以上。"
        ),
        skus={(): (16800, 22800, 66)},
        featured=True,
    ),
    DemoProduct(
        key="lipstick",
        category="美妆",
        title="丝绒哑光口红 显白不拔干",
        short="丝绒口红",
        subtitle="丝绒质地 · 持久不脱色 · 三色可选",
        description=(
            "丝绒雾面质地，一抹显色，轻薄不拔干。\n添加植物精油，滋润双唇。\n净含量 3.5g。"
        ),
        spec_names=["色号"],
        skus=_grid(
            [["#01 正红", "#02 豆沙", "#03 枫叶棕"]],
            lambda c: 12900,
            lambda c: 18900,
            lambda c: {"#01 正红": 80, "#02 豆沙": 3, "#03 枫叶棕": 45}[c[0]],
        ),
    ),
    DemoProduct(
        key="candle",
        category="家居",
        title="大豆蜡香薰蜡烛礼盒 助眠安神",
        short="香薰蜡烛",
        subtitle="天然大豆蜡 · 燃烧 40 小时 · 礼盒装",
        description=(
            "天然大豆蜡，无烟无黑头，燃烧约 40 小时。\n"
            "白茶、无花果、雪松三种香调任选其一（随机发货）。\n"
            "精美礼盒包装，送人自用两相宜。"
        ),
        skus={(): (8900, 12800, 150)},
    ),
    DemoProduct(
        key="nuts",
        category="食品",
        title="每日坚果混合果仁礼盒 独立小包装",
        short="每日坚果",
        subtitle="6 种坚果果干 · 科学配比 · 一天一包",
        description=(
            "巴旦木、腰果、核桃仁、榛子仁、蔓越莓干、蓝莓干科学配比。\n"
            "每包 25g 独立充氮包装，锁住新鲜。\n"
            "保质期 180 天。"
        ),
        spec_names=["规格"],
        skus={("15袋装",): (6900, 9900, 200), ("30袋装",): (12900, 19800, 140)},
    ),
    DemoProduct(
        key="jeans",
        category="女装",
        title="高腰直筒牛仔裤 显瘦垂感阔腿裤",
        short="牛仔裤",
        subtitle="弹力面料 · 高腰显腿长 · 四季可穿",
        description=(
            "含 2% 氨纶，微弹不紧绷。\n"
            "高腰直筒版型，修饰腿型、显高显瘦。\n"
            "尺码：25（腰围 64cm）至 29（腰围 74cm）。"
        ),
        spec_names=["尺码"],
        skus=_grid(
            [["25", "26", "27", "28", "29"]],
            lambda c: 12900,
            lambda c: 19900,
            lambda c: {"25": 12, "26": 30, "27": 35, "28": 20, "29": 6}[c[0]],
        ),
        featured=True,
    ),
    DemoProduct(
        key="cleanser",
        category="美妆",
        title="氨基酸温和洁面乳 120g",
        short="洁面乳",
        subtitle="氨基酸表活 · 绵密泡沫 · 洗后不紧绷",
        description=(
            "氨基酸表面活性剂，温和清洁不伤屏障。\n"
            "绵密泡沫，带走多余油脂与彩妆残留。\n"
            "洗后水润不紧绷，早晚皆可使用。"
        ),
        skus={(): (5900, 8900, 300)},
    ),
    DemoProduct(
        key="doormat",
        category="家居",
        title="硅藻泥吸水地垫 浴室防滑脚垫",
        short="硅藻泥地垫",
        subtitle="秒吸水 · 速干 · 防滑底",
        description=(
            "天然硅藻土制成，踩上去水渍几秒即干。\n"
            "底部防滑垫，放在浴室门口更安心。\n"
            "如有污渍，可用砂纸轻轻打磨恢复。"
        ),
        spec_names=["尺寸"],
        skus={("40×60cm",): (4900, 6900, 90), ("50×80cm",): (6900, 9900, 60)},
    ),
    DemoProduct(
        key="apple",
        category="食品",
        title="新疆阿克苏冰糖心苹果 产地直发",
        short="冰糖心苹果",
        subtitle="脆甜多汁 · 现摘现发 · 坏果包赔",
        description=(
            "新疆阿克苏红旗坡果园，昼夜温差大，糖心自然形成。\n"
            "单果 75-85mm，脆甜多汁。\n"
            "现摘现发，坏果拍照联系客服包赔。"
        ),
        spec_names=["规格"],
        skus={("5斤装",): (3990, 5990, 500), ("10斤装",): (6990, 9990, 260)},
        featured=True,
    ),
    DemoProduct(
        key="dress",
        category="女装",
        title="法式碎花雪纺连衣裙 收腰显瘦夏季新款",
        short="碎花连衣裙",
        subtitle="雪纺面料 · 收腰设计 · 三色可选",
        description=(
            "轻盈雪纺面料，垂感好，夏天穿着不闷热。\n"
            "V 领收腰设计，温柔显瘦，通勤约会都合适。\n"
            "内衬里布，不透肉。\n"
            "尺码参考：S（80-95 斤）M（95-108 斤）L（108-118 斤）XL（118-130 斤）。"
        ),
        spec_names=["颜色", "尺码"],
        skus=_grid(
            [["雾霾蓝", "奶油白", "樱花粉"], ["S", "M", "L", "XL"]],
            lambda c: 16900 if c[1] == "XL" else 15900,
            lambda c: 29900,
            # 樱花粉 XL is sold out: the product page must show it disabled.
            lambda c: 0 if c == ("樱花粉", "XL") else {"S": 12, "M": 25, "L": 18, "XL": 8}[c[1]],
        ),
        featured=True,
        images=3,
    ),
]


def seed_demo_catalog() -> tuple[int, int]:
    """Load the demo categories, products, SKUs and images if missing.

    Safe to run again: existing rows are found by natural key and left as they are, so a
    merchant's edits to demo data survive. Missing image files are redrawn. Flushes only.
    Returns how many categories and products were added.
    """
    upload_dir = Path(current_app.config["UPLOAD_DIR"])
    upload_dir.mkdir(parents=True, exist_ok=True)
    font_path = find_cjk_font()

    categories: dict[str, Category] = {}
    added_categories = 0
    for name, (sort, _colours, _shape) in CATEGORIES.items():
        row = db.session.scalar(select(Category).where(Category.name == name))
        if row is None:
            row = Category(name=name, sort=sort)
            db.session.add(row)
            added_categories += 1
        categories[name] = row
    db.session.flush()

    added_products = 0
    for item in PRODUCTS:
        filenames = [f"demo-{item.key}-{n}.jpg" for n in range(1, item.images + 1)]
        for n, filename in enumerate(filenames, start=1):
            target = upload_dir / filename
            if not target.exists():
                draw_product_card(item, n, target, font_path)
        codes = [_sku_code(item.key, combo) for combo in item.skus]
        # A product is known by its SKU codes (unique in the shop).
        if db.session.scalar(select(Sku.id).where(Sku.code.in_(codes)).limit(1)) is not None:
            continue
        product = Product(
            title=item.title,
            subtitle=item.subtitle,
            description=item.description,
            spec_names=list(item.spec_names),
            category=categories[item.category],
            on_shelf=item.on_shelf,
            featured=item.featured,
        )
        for combo, code in zip(item.skus, codes, strict=True):
            price, original, stock = item.skus[combo]
            product.skus.append(
                Sku(
                    specs=dict(zip(item.spec_names, combo, strict=True)),
                    price_fen=price,
                    original_price_fen=original,
                    stock=stock,
                    code=code,
                )
            )
        for sort, filename in enumerate(filenames):
            product.images.append(
                ProductImage(filename=filename, width=IMAGE_SIZE, height=IMAGE_SIZE, sort=sort)
            )
        db.session.add(product)
        added_products += 1
    db.session.flush()
    return added_categories, added_products


def _sku_code(key: str, combo: tuple[str, ...]) -> str:
    """A stable SKU code such as DEMO-DRESS-3-2 (indexes keep codes ASCII)."""
    if not combo:
        return f"DEMO-{key.upper()}"
    item = next(p for p in PRODUCTS if p.key == key)
    values = _spec_values(item)
    parts = [str(values[i].index(v) + 1) for i, v in enumerate(combo)]
    return f"DEMO-{key.upper()}-{'-'.join(parts)}"


def _spec_values(item: DemoProduct) -> list[list[str]]:
    """Each specification's values in first-seen order."""
    values: list[list[str]] = [[] for _ in item.spec_names]
    for combo in item.skus:
        for i, v in enumerate(combo):
            if v not in values[i]:
                values[i].append(v)
    return values


# --- images -----------------------------------------------------------------------------


def _hex(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


def draw_product_card(item: DemoProduct, n: int, target: Path, font_path: str | None) -> None:
    """Draw a flat product card (gradient, shapes, short name) as a JPEG at ``target``.

    Image ``n`` varies the gradient angle and shape layout, so a gallery has distinct
    slides. Deterministic: the same product always gets the same pictures.
    """
    size = IMAGE_SIZE
    _sort, (start, end), shape = CATEGORIES[item.category]
    angles = (45, 135, 90, 20, 160)
    angle = angles[(n - 1 + sum(map(ord, item.key))) % len(angles)]  # products differ too
    # Rotate a gradient twice the card's size and keep its middle: no empty corners.
    big = Image.linear_gradient("L").resize((size * 2, size * 2)).rotate(angle)
    mask = big.crop((size // 2, size // 2, size // 2 + size, size // 2 + size))
    image = Image.composite(
        Image.new("RGB", (size, size), _hex(end)), Image.new("RGB", (size, size), _hex(start)), mask
    )

    overlay = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    white = (255, 255, 255)
    # Big soft shape behind, a few small ones around: "product on a backdrop".
    cx, cy = (size // 2, size // 2 - 40) if n == 1 else (size // 2 + 120, size // 2 - 90)
    radius = 230 if n == 1 else 170
    _shape(draw, shape, cx, cy, radius, (*white, 70))
    _shape(draw, shape, cx, cy, int(radius * 0.62), (*white, 110))
    dots = ((-270, -260, 40), (260, 230, 55), (-230, 250, 26))
    for i, (dx, dy, r) in enumerate(dots if n == 1 else dots[:2]):  # keep the label clear
        _shape(draw, shape, size // 2 + dx, size // 2 + dy, r, (*white, 60 + 25 * i))

    font = load_font(font_path, 92 if len(item.short) <= 4 else 76)
    small = load_font(font_path, 34)
    if font is not None:
        text = item.short
        box = draw.textbbox((0, 0), text, font=font)
        w, h = box[2] - box[0], box[3] - box[1]
        x, y = (size - w) // 2 - box[0], (cy - h // 2 - box[1]) if n == 1 else 470
        if n != 1:
            x = 60 - box[0]
        draw.text((x + 3, y + 4), text, font=font, fill=(0, 0, 0, 60))  # soft drop shadow
        draw.text((x, y), text, font=font, fill=(*white, 255))
    if small is not None:
        label = item.category if n == 1 else ("细节展示", "实拍图", "更多")[min(n - 2, 2)]
        box = draw.textbbox((0, 0), label, font=small)
        pad = 18
        lw, lh = box[2] - box[0] + pad * 2, box[3] - box[1] + pad
        lx, ly = (size - lw) // 2, size - 130
        if n != 1:
            lx = 60
        draw.rounded_rectangle((lx, ly, lx + lw, ly + lh), radius=lh // 2, fill=(*white, 215))
        draw.text(
            (lx + pad - box[0], ly + pad // 2 - box[1]), label, font=small, fill=(*_hex(end), 255)
        )

    image = Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")
    image.save(target, "JPEG", quality=82, optimize=True, progressive=True)


def _shape(draw: ImageDraw.ImageDraw, shape: str, cx: int, cy: int, r: int, fill) -> None:
    """Draw one of the category shapes centred on (cx, cy)."""
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rounded_rectangle(box, radius=r // 3, fill=fill)
    elif shape == "leaf":
        draw.ellipse((cx - r, cy - int(r * 0.7), cx + r, cy + int(r * 0.7)), fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)
