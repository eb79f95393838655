"""Bad input never gives a server error: every admin page and form, and every shop page,
is sent nonsense (junk query strings, empty and junk form fields) and must answer with a
page, a redirect or a 4xx, never a 500."""

from __future__ import annotations

from functools import cache
from urllib.parse import urlencode

import pytest

from tests.support.access import admin_rules, client, url_for_rule, world  # noqa: F401
from tests.support.admin import csrf_token

# Every test sends values past PostgreSQL's column types, so each runs on PostgreSQL too
# (docs/testing.md), except the callers that reach no handler another caller does not:
# a signed-out visitor's pages and API calls (the signed-in runs reach the same handlers
# and the ones behind the sign-in) run on SQLite only.
PG = pytest.mark.postgresql  # values past PostgreSQL's column types

# Query and form names the pages read, each given values no page should trust.
FIELDS = (
    "page",
    "per_page",
    "status",
    "q",
    "kind",
    "state",
    "start",
    "end",
    "from",
    "to",
    "date",
    "day",
    "month",
    "period",
    "board",
    "level",
    "levels",
    "sort",
    "tab",
    "distributor_id",
    "user_id",
    "order_id",
    "sku_id",
    "product_id",
    "category_id",
    "quantity",
    "buyer_id",
    "chain",
    "who",
    "paid",
    "district_code",
    "region_code",
    "parent",
    "parent_id",
    "next",
    "amount",
    "amount_yuan",
    "price",
    "price_yuan",
    "stock",
    "reason",
    "name",
    "title",
    "code",
    "rate",
    "rate_bp",
    "discount",
    "days",
    "self_purchase",
    "default1",
    "rule_mode",
    "rule1",
    "grade_id",
    "merchant_id",
    "target_kind",
    "target_value",
    "reward",
    "starts_at",
    "ends_at",
    "enabled",
    "role",
    "password",
    "username",
    "carrier",
    "tracking_number",
)
JUNK = (
    "-1",
    "abc",
    "9" * 40,
    "²",
    "<script>alert(1)</script>",
    "2026-13-45",
    "１２３",
    "",
    "长" * 300,
)


def refused_by_csrf(response) -> bool:
    """The CSRF refusal page (app/core/errors.py): the form never reached its handler."""
    return response.status_code == 400 and "页面已过期" in response.get_data(as_text=True)


def post_junk_everywhere(app, browser, posts, args, token) -> None:
    """POST every junk variant to every rule with a valid CSRF token (``token()``, taken
    again only when the session's token changed); no server errors, and the posts must
    reach their handlers rather than all be refused."""
    failures = Failures()
    reached = 0
    current = token()
    for value in JUNK:
        for rule in posts:
            url = url_for_rule(app, rule, args)
            response = browser.post(url, data={"csrf_token": current, **junk(value)})
            if refused_by_csrf(response):  # the session's token changed: send a fresh one
                current = token()
                response = browser.post(url, data={"csrf_token": current, **junk(value)})
            failures.check(response, (url, value))
            reached += not refused_by_csrf(response)
    assert not failures, "\n".join(map(str, failures))
    assert reached > len(posts), "the posts were refused before their handlers (CSRF?)"


def junk(value: str) -> dict[str, str]:
    return dict.fromkeys(FIELDS, value)


@cache
def junk_query(value: str) -> str:
    """``junk(value)`` as a query string, encoded once: the long values make it ~200 kB, and
    the test client would encode it again for each of thousands of requests. The server
    still decodes every request's query string itself."""
    return urlencode(junk(value))


class Failures(list):
    """Server errors collected across a sweep, so one run lists them all. A 502/503 that
    explains itself is allowed: it is WeChat Pay being unreachable (no stand-in runs in
    this test), which the app reports as such."""

    def check(self, response, what) -> None:
        status = response.status_code
        explained = status in (502, 503) and (
            (response.is_json and response.get_json()["error"]["code"])
            or "微信" in response.get_data(as_text=True)
        )
        if status >= 500 and not explained:
            self.append((what, status))


@PG
def test_admin_pages_survive_junk_query_strings(app, client, login_as, world):  # noqa: F811
    login_as(client, world["owner"])
    failures = Failures()
    for rule, method in admin_rules(app):
        if method != "GET" or rule.endpoint == "admin.logout":
            continue
        url = url_for_rule(app, rule, world["args"])
        for value in JUNK:
            failures.check(client.get(url, query_string=junk_query(value)), (url, value))
    assert not failures, "\n".join(map(str, failures))


@PG
def test_admin_forms_survive_junk_and_empty_fields(app, client, login_as, world):  # noqa: F811
    login_as(client, world["owner"])
    posts = [
        rule
        for rule, method in admin_rules(app)
        if method == "POST" and rule.endpoint not in ("admin.logout",)
    ]
    assert posts
    post_junk_everywhere(app, client, posts, world["args"], lambda: csrf_token(client, "/admin/"))


@pytest.mark.parametrize("signed_in", [pytest.param(False), pytest.param(True, marks=PG)])
def test_shop_pages_survive_junk_query_strings(app, client, login_as, world, signed_in):  # noqa: F811
    if signed_in:
        login_as(client, world["customer"])
    checked = 0
    failures = Failures()
    for rule in app.url_map.iter_rules():
        if (
            "GET" not in rule.methods
            or rule.endpoint.split(".")[0] in ("admin", "api", "static", "sandbox")
            or "logout" in rule.endpoint
            or set(rule.arguments) - set(world["args"])
        ):
            continue
        url = url_for_rule(app, rule, world["args"])
        for value in JUNK:
            failures.check(client.get(url, query_string=junk_query(value)), (url, value))
        checked += 1
    assert checked >= 10
    assert not failures, "\n".join(map(str, failures))


def api_rules(app, method: str):
    """(rule, url) of every /api/v1 URL taking ``method`` whose arguments the world fills."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in ("api", "api_admin") and method in rule.methods:
            yield rule


@pytest.mark.parametrize(
    "who",
    [
        pytest.param("anonymous"),
        *(pytest.param(who, marks=PG) for who in ("customer", "distributor", "open-api token")),
    ],
)
def test_api_survives_junk_queries_and_bodies(app, client, login_as, runner, world, who):  # noqa: F811
    """JSON doors answer nonsense with a JSON error (4xx), never a 500: the shop's own
    API as a customer and as a distributor with money (with the CSRF header a page's
    fetch() sends, so writes reach their handlers) and the merchant Open API with a
    token from the real CLI."""
    from app.distribution.models import Distributor
    from app.extensions import db

    headers = {}
    if who in ("customer", "distributor"):
        user = world["customer"]
        if who == "distributor":
            user = db.session.get(Distributor, world["args"]["distributor_id"]).user
        login_as(client, user)
        headers = {"X-CSRFToken": client.get("/cart/session").get_json()["csrf_token"]}
    elif who == "open-api token":
        made = runner.invoke(args=["create-api-token", "sweep", "--scope", "owner"])
        assert made.exit_code == 0, made.output
        headers = {"Authorization": f"Bearer {made.output.strip()}"}
    args = {**world["args"], "code": "ABCDEFGH", "number": "X1", "name": "x"}
    failures = Failures()
    checked = writes_reached = 0
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        for rule in api_rules(app, method):
            if set(rule.arguments) - set(args):
                continue
            url = url_for_rule(app, rule, args)
            for value in JUNK:
                if method == "GET":
                    response = client.get(url, query_string=junk_query(value), headers=headers)
                else:
                    response = client.open(url, method=method, json=junk(value), headers=headers)
                    refused = response.status_code in (401, 403) or (
                        response.status_code == 400
                        and response.is_json
                        and response.get_json()["error"]["code"] == "csrf_failed"
                    )
                    writes_reached += not refused
                failures.check(response, (method, url, value))
            response = client.open(
                url,
                method=method,
                data="{not json",
                content_type="application/json",
                headers=headers,
            )
            failures.check(response, (method, url, "broken JSON"))
            checked += 1
    assert checked >= 20
    assert not failures, "\n".join(map(str, failures))
    if who != "anonymous":
        assert writes_reached > 20, "the writes were refused before their handlers (CSRF?)"


PROTOCOL_DOORS = ("wechat", "payments")  # WeChat's own requests: tested signed, elsewhere


@PG
@pytest.mark.parametrize("who", ["customer", "distributor"])
def test_shop_forms_survive_junk_and_empty_fields(app, client, login_as, world, who):  # noqa: F811
    """The H5 forms (join, withdraw, apply, leaderboard name) as a customer and as a
    distributor with money: junk and empty fields give a page or a 4xx, never a 500."""
    from app.distribution.models import Distributor
    from app.extensions import db

    if who == "customer":
        login_as(client, world["customer"])
    else:
        distributor = db.session.get(Distributor, world["args"]["distributor_id"])
        login_as(client, distributor.user)
    posts = [
        rule
        for rule in app.url_map.iter_rules()
        if "POST" in rule.methods
        and rule.endpoint.split(".")[0] not in ("admin", "api", "api_admin", "static")
        and rule.endpoint.split(".")[0] not in PROTOCOL_DOORS
        and "logout" not in rule.endpoint
        and not set(rule.arguments) - set(world["args"])
    ]
    assert len(posts) >= 4
    token = csrf_token(client, "/distributor" if who == "customer" else "/distributor/withdraw")
    post_junk_everywhere(app, client, posts, world["args"], lambda: token)


@PG
@pytest.mark.parametrize("who", ["owner", "customer"])
def test_urls_with_ids_no_row_can_have_answer_404_not_500(app, client, login_as, world, who):  # noqa: F811
    """Every URL with a numeric id, given ids past any column's range (or just unused),
    answers like a missing row, never a server error, whatever the method."""
    login_as(client, world[who])
    token = csrf_token(client, "/admin/" if who == "owner" else "/distributor")
    failures = Failures()
    checked = 0
    for rule in app.url_map.iter_rules():
        numeric = [name for name in rule.arguments if name.endswith("_id")]
        if not numeric or rule.endpoint.startswith("static"):
            continue
        for value in (10**20, 2**31, 987654):
            args = {**world["args"], **dict.fromkeys(numeric, value)}
            if set(rule.arguments) - set(args):
                continue
            url = url_for_rule(app, rule, args)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                data = {"csrf_token": token} if method != "GET" else None
                failures.check(client.open(url, method=method, data=data), (method, url, value))
            checked += 1
    assert checked >= 20
    assert not failures, "\n".join(map(str, failures))


HUGE_IDS = (2**31, 10**20, 987654)  # past PostgreSQL's integer, past SQLite's, merely unused


@PG
def test_open_api_ids_past_any_row_answer_json_404_or_422(app, client, runner, world):  # noqa: F811
    """Every Open API route (read from the URL map, so new ones are covered), with an
    owner token from the real CLI: ids no row has, in the path (each alone and all at
    once), in the JSON body and in the query string, answer the route's JSON 404 or 422,
    never a server error (SQLite cannot bind such a number, PostgreSQL's integer refuses
    it). Bodies are otherwise valid (built from the OpenAPI document) so the handler,
    not the validation, meets the path id."""
    from tests.support.openapi import example_body, spec_path, with_ids

    made = runner.invoke(args=["create-api-token", "ids", "--scope", "owner"])
    assert made.exit_code == 0, made.output
    headers = {"Authorization": f"Bearer {made.output.strip()}"}
    document = client.get("/api/v1/openapi.json").get_json()
    failures = []
    checked = 0

    def expect(response, allowed, what) -> None:
        error = response.get_json(silent=True) or {}
        if response.status_code not in allowed or not error.get("error", {}).get("code"):
            failures.append((what, response.status_code, response.get_data(as_text=True)[:200]))

    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] != "api_admin":
            continue
        numeric = sorted(name for name in rule.arguments if name.endswith("_id"))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            body = example_body(document, rule, method)
            operation = document["paths"][spec_path(str(rule))][method.lower()]
            # Path: each id alone past any row (the others real), then all of them.
            for value in HUGE_IDS if numeric else ():
                for names in [[name] for name in numeric] + [numeric]:
                    args = {**world["args"], **dict.fromkeys(names, value)}
                    url = url_for_rule(app, rule, args)
                    response = client.open(url, method=method, json=body, headers=headers)
                    expect(response, (404,), (method, url, body))
                    checked += 1
            url = url_for_rule(app, rule, world["args"])
            # Body: every *_id field past any row.
            if body is not None and with_ids(body, 0) != body:
                for value in HUGE_IDS[:2]:
                    sent = with_ids(body, value)
                    response = client.open(url, method=method, json=sent, headers=headers)
                    expect(response, (404, 409, 422), (method, url, sent))
                    checked += 1
            # Query string: every *_id parameter past any row.
            query_ids = [
                p["name"]
                for p in operation.get("parameters", [])
                if p["in"] == "query" and p["name"].endswith("_id")
            ]
            for value in HUGE_IDS[:2]:
                if query_ids:
                    query = dict.fromkeys(query_ids, str(value))
                    response = client.open(url, method=method, query_string=query, headers=headers)
                    expect(response, (422,), (method, url, query))
                    checked += 1
    assert checked >= 60
    assert not failures, "\n".join(map(str, failures))
