"""The Open API token page in a real browser: the owner makes a token, copies the secret
shown once, the token works over HTTP, and the revoke button (with its confirmation)
ends it."""

from __future__ import annotations

import pytest
import requests


@pytest.mark.browser
def test_owner_makes_and_revokes_a_token_in_the_browser(desk, live_server, make, artifacts):
    make.staff("boss", password="boss-password", role="owner")
    base = live_server.url
    desk.goto(f"{base}/admin/api-tokens")
    desk.fill("#username", "boss")
    desk.fill("#password", "boss-password")
    desk.click("button[type=submit]")
    desk.wait_for_url(f"{base}/admin/api-tokens")

    desk.fill("[name=name]", "ERP 同步")
    desk.select_option("[name=scope]", "read")
    desk.fill("[name=expires_days]", "90")
    desk.click("button.btn-primary:has-text('创建')")
    secret = desk.locator("[data-secret]").inner_text().strip()
    assert secret.startswith("sk_")
    desk.screenshot(path=str(artifacts / "admin-api-token-created.png"), full_page=True)
    headers = {"Authorization": f"Bearer {secret}"}
    assert requests.get(f"{base}/api/v1/admin/products", headers=headers).status_code == 200

    desk.goto(f"{base}/admin/api-tokens")  # the secret is not shown again
    assert secret not in desk.content()
    assert desk.locator("text=ERP 同步").count() == 1
    desk.click("button:has-text('撤销')")  # the fixture accepts the confirmation
    desk.wait_for_url(f"{base}/admin/api-tokens")
    assert "已撤销令牌" in desk.content()
    refused = requests.get(f"{base}/api/v1/admin/products", headers=headers)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_revoked"
