"""Every page reachable from the navigation renders (one <h1>, no error box, no JavaScript
error), at 1280 px and at phone width, and gets a screenshot under
target/dashboard-screenshots/ (page-NAME.png, phone-NAME.png; docs-NAME.png is the 1280x800
view that docs/dashboard.md shows)."""

import re

from playwright.sync_api import expect

# Words a page shows only when its JavaScript printed a value it should not have.
LEAKS = re.compile(r"\bundefined\b|\[object Object\]|\bNaN\b")


def nav_links(page):
    links = page.locator("nav#nav a")
    expect(links.first).to_be_attached()
    return [(a.get_attribute("href"), a.inner_text().strip()) for a in links.all()]


def check_rendered(page, href, where):
    expect(page).to_have_url(re.compile(re.escape(href) + r"$"))
    h1 = page.locator("main h1")
    expect(h1).to_have_count(1)
    expect(h1).not_to_be_empty()
    # Loaded: no placeholder left, no error box.
    expect(page.locator("main .loading")).to_have_count(0)
    errors = page.locator("main .error, main [role=alert]")
    assert errors.count() == 0, f"{where} {href}: error shown: {errors.all_inner_texts()}"
    text = page.locator("main").inner_text()
    assert not LEAKS.search(text), f"{where} {href}: {LEAKS.search(text).group()} in the page"
    assert "Not found" != h1.inner_text(), f"{where} {href}: the router has no such page"


def name_of(href):
    return href.lstrip("#/").split("?")[0] or "overview"


def test_every_page_renders(admin_page, screenshot):
    page = admin_page
    links = nav_links(page)
    assert ("#/admin", "Administration") in links, links
    for href, title in links:
        page.locator("nav#nav").get_by_role("link", name=title, exact=True).click()
        check_rendered(page, href, "1280 px")
        # The current page is marked (not by colour alone: aria-current and an underline).
        expect(page.locator(f'nav#nav a[href="{href}"]')).to_have_attribute("aria-current", "page")
        screenshot(page, f"page-{name_of(href)}")
        page.screenshot(path=str(screenshot_path(f"docs-{name_of(href)}")), type="png",
                        scale="css")
    # Pages reached from elsewhere than the navigation.
    page.goto("/#/password")
    expect(page.locator("h1")).to_have_text("Change password")
    screenshot(page, "page-password")
    page.goto("/#/no-such-page")
    expect(page.locator("main h1")).to_have_text("Not found")


def test_phone_width(new_page, admin_password, login, screenshot):
    page = new_page(390, 844)
    login(page, "admin", admin_password)
    menu = page.get_by_role("button", name="Menu")
    nav = page.locator("nav#nav")
    expect(menu).to_be_visible()
    expect(nav).to_be_hidden()
    menu.click()
    expect(nav).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "true")
    screenshot(page, "phone-menu", full_page=False)
    links = nav_links(page)
    for href, title in links:
        if not nav.is_visible():
            menu.click()
        nav.get_by_role("link", name=title, exact=True).click()
        check_rendered(page, href, "390 px")
        # Nothing wider than the phone: wide tables scroll inside their own box.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"390 px {href}: the page is {width} px wide"
        screenshot(page, f"phone-{name_of(href)}")


def screenshot_path(name):
    from conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"
