"""Browser helpers that work under the pages' Content-Security-Policy."""

from __future__ import annotations

import time


def wait_until(page, expression: str, arg=None, timeout: float = 10.0) -> None:
    """Wait until ``expression`` (JavaScript, as for ``page.evaluate``) is truthy in ``page``.

    Playwright's ``wait_for_function`` polls by evaluating a string inside the page, which
    a CSP without ``'unsafe-eval'`` (every page of the shop) refuses; ``page.evaluate``
    runs through the DevTools protocol and is not affected, so this polls with it.
    """
    deadline = time.monotonic() + timeout
    while True:
        if page.evaluate(expression, arg):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout} s: {expression}")
        time.sleep(0.05)


def sign_in_on_stand_in(page, sandbox, nickname: str) -> None:
    page.wait_for_url(f"{sandbox.url}/connect/oauth2/authorize?**")
    page.locator("label.fan", has_text=nickname).click()
    page.locator("button[name=action][value=allow]").click()  # 确认登录 or 允许
