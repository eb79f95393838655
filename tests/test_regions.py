"""The GB/T 2260 province/city/district tree used by the address picker."""

from app import regions


def test_every_listed_district_resolves_to_its_parents():
    for province in regions.provinces():
        for city in regions.cities(province.code):
            for district in regions.districts(city.code):
                resolved = regions.resolve(district.code)
                assert resolved.province == province
                assert resolved.city == city


def test_municipality_has_a_city_level():
    assert [c.name for c in regions.cities("110000")] == ["北京市"]
    resolved = regions.resolve("110105")
    assert (resolved.province.name, resolved.city.name, resolved.district.name) == (
        "北京市",
        "北京市",
        "朝阳区",
    )


def test_cities_without_districts_and_province_governed_counties():
    assert regions.resolve("441900").district.name == "东莞市"
    assert regions.resolve("429004").city.name == "仙桃市"


def test_ordinary_district():
    resolved = regions.resolve("440305")
    assert (resolved.province.name, resolved.city.name, resolved.district.name) == (
        "广东省",
        "深圳市",
        "南山区",
    )


def test_non_districts_are_refused():
    for code in ("440000", "440300", "999999", "", "44030", "abcdef"):
        assert regions.resolve(code) is None
    assert len(regions.provinces()) == 31  # mainland provinces, regions and municipalities
