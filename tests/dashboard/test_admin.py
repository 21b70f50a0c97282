"""The Administration page: users (add, change role, delete; what a viewer sees) and API keys
(create with the secret shown once, disable, enable, delete)."""

import re

from playwright.sync_api import expect

VIEWER = "dash-viewer"
VIEWER_PASSWORD = "Viewer-pass-42"


def open_admin(page):
    page.get_by_role("link", name="Administration").click()
    expect(page).to_have_url(re.compile(r"#/admin"))
    expect(page.locator("main h1")).to_have_text("Administration")


def user_row(page, name):
    return page.locator("main tr", has=page.get_by_role("cell", name=name, exact=True))


def test_users(admin_page, new_page, ferry, admin_api, login, screenshot):
    page = admin_page
    page.on("dialog", lambda d: d.accept())
    open_admin(page)
    expect(user_row(page, "admin (you)")).to_contain_text("administrator")

    page.get_by_label("Username").fill(VIEWER)
    page.get_by_label("Password", exact=True).fill(VIEWER_PASSWORD)
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_label("Description", exact=True).fill("reads the dashboard")
    page.get_by_role("button", name="Add user").click()
    row = user_row(page, VIEWER)
    expect(row).to_contain_text("viewer")
    expect(row).to_contain_text("reads the dashboard")
    assert {u["username"]: u["role"] for u in admin_api("GET", "/api/v5/users").body}[VIEWER] == "viewer"
    screenshot(page, "admin-users")

    # Change the role both ways.
    page.get_by_role("button", name=f"Make {VIEWER} an administrator").click()
    expect(user_row(page, VIEWER).get_by_role("cell", name="administrator", exact=True)).to_be_visible()
    page.get_by_role("button", name=f"Make {VIEWER} a viewer").click()
    expect(user_row(page, VIEWER).get_by_role("cell", name="viewer", exact=True)).to_be_visible()
    assert {u["username"]: u["role"] for u in admin_api("GET", "/api/v5/users").body}[VIEWER] == "viewer"

    # The viewer reads the page but gets no button that changes anything; the API refuses
    # such a change with a clear 403.
    vpage = new_page()
    login(vpage, VIEWER, VIEWER_PASSWORD)
    open_admin(vpage)
    expect(vpage.locator(".notice")).to_contain_text("viewer")
    expect(user_row(vpage, "admin")).to_be_visible()
    expect(vpage.locator("main button")).to_have_count(0)
    expect(vpage.locator("main form")).to_have_count(0)
    screenshot(vpage, "admin-as-viewer")
    token = vpage.evaluate("sessionStorage.getItem('ferry.token')")
    r = ferry.call("POST", "/api/v5/users", {"username": "x-by-viewer", "password": "Abcdefgh-1",
                                             "role": "viewer"}, token=token)
    assert r.status == 403 and r.body["message"], r.text

    # Delete it (after a confirmation).
    page.get_by_role("button", name=f"Delete user {VIEWER}").click()
    expect(user_row(page, VIEWER)).to_have_count(0)
    assert VIEWER not in {u["username"] for u in admin_api("GET", "/api/v5/users").body}
    # No delete button for yourself: a link to change your password instead.
    expect(page.get_by_role("button", name="Delete user admin")).to_have_count(0)
    page.get_by_role("link", name="Change your own password").click()
    expect(page).to_have_url(re.compile(r"#/password"))
    expect(page.locator("h1")).to_have_text("Change password")


def test_user_errors_are_shown(admin_page, console):
    console.allow(r"status of 400 .*/api/v5/users", "a refused password is the test")
    page = admin_page
    open_admin(page)
    page.get_by_label("Username").fill("weak-one")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_role("button", name="Add user").click()
    expect(page.locator("main [role=alert]")).to_contain_text("password")
    expect(user_row(page, "weak-one")).to_have_count(0)


def test_api_keys(admin_page, ferry, admin_api, screenshot):
    page = admin_page
    page.on("dialog", lambda d: d.accept())
    open_admin(page)
    page.get_by_label("Key name").fill("ci-script")
    page.get_by_label("Key description").fill("used by CI")
    page.get_by_label("Expires (empty: never)").fill("2031-06-01T12:00")
    page.get_by_role("button", name="Create API key").click()

    shown = page.locator(".secret-once")
    expect(shown).to_contain_text("shown only this once")
    key = shown.locator("code.api-key").inner_text()
    secret = shown.locator("code.api-secret").inner_text()
    assert key and secret
    screenshot(page, "admin-api-key-created")
    # The secret works (HTTP Basic), and the list has the key, enabled, with its expiry.
    assert ferry.call("GET", "/api/v5/stats", basic=(key, secret)).status == 200
    row = page.locator("main tr", has=page.get_by_role("cell", name="ci-script", exact=True))
    expect(row).to_contain_text("enabled")
    expect(row).to_contain_text("2031")
    expect(row).to_contain_text("used by CI")

    # Shown once: gone when dismissed and after a reload, and the API never returns it.
    page.get_by_role("button", name="I have copied the secret").click()
    expect(shown).to_have_count(0)
    page.reload()
    expect(page.locator("main h1")).to_have_text("Administration")
    expect(row).to_be_visible()
    assert secret not in page.content()
    assert secret not in admin_api("GET", "/api/v5/api_key").text

    # Disable: the key stops working; enable: it works again.
    page.get_by_role("button", name="Disable API key ci-script").click()
    expect(row).to_contain_text("disabled")
    assert ferry.call("GET", "/api/v5/stats", basic=(key, secret)).status == 401
    page.get_by_role("button", name="Enable API key ci-script").click()
    expect(row.get_by_text("enabled", exact=True)).to_be_visible()
    assert ferry.call("GET", "/api/v5/stats", basic=(key, secret)).status == 200

    page.get_by_role("button", name="Delete API key ci-script").click()
    expect(row).to_have_count(0)
    assert ferry.call("GET", "/api/v5/stats", basic=(key, secret)).status == 401
    assert admin_api("GET", "/api/v5/api_key/ci-script").status == 404
