"""Login, the forced password change, logout, and the return to the login page when the token
is revoked or expires."""

import re
import time

from playwright.sync_api import expect

NEW_PASSWORD = "Changed-in-browser-1"


def token_of(page):
    return page.evaluate("sessionStorage.getItem('ferry.token')")


def test_forced_password_change(start_ferry, new_page, console, login, screenshot):
    # A Ferry of its own: its admin still has the default password whatever ran before.
    f = start_ferry()
    page = new_page(base=f.url)
    console.allow(r"status of 401 .*/api/v5/login",
                  "the old password is refused after the change: that is checked below")
    console.allow(r"status of 400 .*/change_pwd",
                  "a password the policy refuses is answered 400: that is checked below")

    page.goto("/")
    expect(page).to_have_url(re.compile(r"#/login"))
    expect(page.locator("h1")).to_have_text("Log in to Ferry")
    screenshot(page, "login")
    login(page, "admin", "public")
    expect(page).to_have_url(re.compile(r"#/password"))
    expect(page.locator("h1")).to_have_text("Change password")
    expect(page.locator(".notice")).to_contain_text("still the default")
    screenshot(page, "password-change")

    # No way around it: another page lands back on the form ...
    page.goto("/#/overview")
    expect(page).to_have_url(re.compile(r"#/password"))
    expect(page.locator("h1")).to_have_text("Change password")
    page.goto("/#/admin")
    expect(page).to_have_url(re.compile(r"#/password"))
    # ... and the API refuses the page's token for anything but the change.
    token = token_of(page)
    assert token
    for path in ("/api/v5/stats", "/api/v5/users", "/api/v5/clients"):
        r = f.call("GET", path, token=token)
        assert r.status == 403 and r.body["code"] == "PASSWORD_CHANGE_REQUIRED", (path, r.text)

    # The policy is explained.
    page.get_by_label("Current password").fill("public")
    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("New password again").fill("short")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_contain_text("password")
    expect(page).to_have_url(re.compile(r"#/password"))

    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page).to_have_url(re.compile(r"#/login"))
    expect(page.locator(".notice")).to_contain_text("Password changed")

    # The default no longer works; the new one does, and the dashboard opens.
    login(page, "admin", "public", expect_ok=False)
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page).to_have_url(re.compile(r"#/login"))
    login(page, "admin", NEW_PASSWORD)
    expect(page).to_have_url(re.compile(r"#/overview"))
    assert f.call("GET", "/api/v5/stats", token=token_of(page)).status == 200


def test_wrong_password_is_refused_clearly(page, ferry, admin_password, console, login):
    console.allow(r"status of 401 .*/api/v5/login", "a wrong password is answered 401: the test")
    login(page, "admin", "not-the-password", expect_ok=False)
    expect(page.get_by_role("alert")).to_contain_text(re.compile("wrong username or password", re.I))
    expect(page).to_have_url(re.compile(r"#/login"))


def test_logout(admin_page, ferry):
    page = admin_page
    token = token_of(page)
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"#/login"))
    expect(page.locator(".notice")).to_contain_text("logged out")
    assert token_of(page) is None
    assert ferry.call("GET", "/api/v5/stats", token=token).status == 401
    # Without a session every page leads to the login.
    page.goto("/#/admin")
    expect(page).to_have_url(re.compile(r"#/login"))


def test_revoked_token_returns_to_login(admin_page, ferry, console, screenshot):
    console.allow(r"status of 401", "the revoked token is refused: that is the test")
    page = admin_page
    # Revoke the page's token behind its back, as an expiry would.
    r = ferry.call("POST", "/api/v5/logout", token=token_of(page))
    assert r.status == 204, r.text
    page.get_by_role("link", name="Administration").click()
    expect(page).to_have_url(re.compile(r"#/login"))
    expect(page.locator(".notice")).to_contain_text("session has ended")
    screenshot(page, "session-ended")


def test_expired_token_returns_to_login(start_ferry, new_page, console, login):
    console.allow(r"status of 401", "the expired token is refused: that is the test")
    f = start_ferry('token_ttl = "2s"')
    token = f.login("admin", "public")
    assert f.call("POST", "/api/v5/users/admin/change_pwd",
                  {"old_pwd": "public", "new_pwd": NEW_PASSWORD}, token).status == 204
    page = new_page(base=f.url)
    login(page, "admin", NEW_PASSWORD)
    time.sleep(2.5)
    page.get_by_role("link", name="Administration").click()
    expect(page).to_have_url(re.compile(r"#/login"))
    expect(page.locator(".notice")).to_contain_text("session has ended")
