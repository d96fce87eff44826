#!/usr/bin/env python3
"""Browser tests of kt-server's web console, in Debian's chromium driven by Selenium.

Run by ConsoleBrowserTests (Swift), which prepares the world, starts kt-server and runs the
phases in turn (checking the databases in between):

  console_test.py PHASE --base URL --admin-token T --user-token T --screenshots DIR [--slug ...]

Every check is an assert; the exit status is 0 only when all passed. Each page visited is
checked with axe-core (no serious or critical violation) and saved as a screenshot.
"""
import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.support.ui import Select, WebDriverWait
from selenium_axe_python import Axe

args = None


def browser(javascript=True):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800", "--disable-gpu"):
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    # The Debian driver: Selenium Manager never downloads anything.
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def url(path):
    return args.base + path


def check_page(driver, name):
    """axe-core on the current page (no serious or critical violation), one h1, a screenshot."""
    os.makedirs(args.screenshots, exist_ok=True)
    driver.save_screenshot(os.path.join(args.screenshots, name + ".png"))
    assert len(driver.find_elements(By.TAG_NAME, "h1")) == 1, f"{name}: one h1"
    if not args.javascript_off:
        axe = Axe(driver)
        axe.inject()
        results = axe.run()
        bad = [v for v in results["violations"] if v.get("impact") in ("serious", "critical")]
        assert not bad, f"{name}: axe violations: " + json.dumps([(v["id"], v["impact"], [n["target"] for n in v["nodes"]]) for v in bad])
    print(f"ok page {name}")


def sign_in(driver, token):
    driver.get(url("/"))
    assert driver.current_url.endswith("/login"), driver.current_url
    field = driver.find_element(By.NAME, "token")
    label = driver.find_element(By.CSS_SELECTOR, "label[for=token]")
    assert label.text == "API token"
    field.send_keys(token)
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
    assert driver.current_url.endswith("/graphs"), driver.current_url
    cookie = driver.get_cookie("kt_session")
    assert cookie and cookie["httpOnly"] and cookie.get("sameSite") == "Strict", cookie
    assert token not in cookie["value"]


def create_graph(driver, slug, name, database):
    driver.get(url("/graphs/new"))
    driver.find_element(By.NAME, "slug").send_keys(slug)
    driver.find_element(By.NAME, "name").send_keys(name)
    Select(driver.find_element(By.NAME, "database_connection_config_key")).select_by_visible_text(database)
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]"))


def click_and_wait(driver, element):
    """Clicks a submit button or link and waits until the next page has replaced this one."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def replaced(_):
        try:
            page.is_enabled()
            return False
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            # chromedriver's answer for a node of a document that navigation just replaced.
            if "does not belong to the document" in str(error):
                return True
            raise

    WebDriverWait(driver, 60).until(replaced)


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def raw_post(path, fields, cookie=None):
    """A POST outside the browser (no JavaScript, no CSRF token unless given); returns the status."""
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url(path), data=data, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    if cookie:
        request.add_header("Cookie", cookie)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    try:
        return urllib.request.build_opener(NoRedirect).open(request).status
    except urllib.error.HTTPError as error:
        return error.code


def phase1():
    """Sign-in, the picker, a graph on the external connection, a failing one."""
    driver = browser()
    try:
        driver.get(url("/graphs"))
        assert driver.current_url.endswith("/login"), "a page that needs a sign-in redirects to /login"
        check_page(driver, "login")
        driver.find_element(By.NAME, "token").send_keys("kt_not_a_real_token")
        click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
        assert "not valid" in driver.find_element(By.CSS_SELECTOR, "p.error").text
        check_page(driver, "login-error")
        sign_in(driver, args.admin_token)
        check_page(driver, "graphs")

        driver.get(url("/graphs/new"))
        options = [o.text for o in Select(driver.find_element(By.NAME, "database_connection_config_key")).options]
        assert options[0] == "default", options
        assert Select(driver.find_element(By.NAME, "database_connection_config_key")).first_selected_option.text == "default"
        assert "Shared" in options and "Broken" in options, options
        assert driver.find_element(By.CSS_SELECTOR, "label[for=database_connection_config_key]").text == "Database"
        check_page(driver, "new-graph")

        # Invalid input: the message next to the field, the typed values kept.
        driver.find_element(By.NAME, "slug").send_keys("Bad Slug")
        driver.find_element(By.NAME, "name").send_keys("Kept name")
        Select(driver.find_element(By.NAME, "database_connection_config_key")).select_by_visible_text("Shared")
        click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]"))
        assert "lower-case" in text(driver, "slug-error")
        assert driver.find_element(By.NAME, "name").get_attribute("value") == "Kept name"
        assert driver.find_element(By.NAME, "slug").get_attribute("value") == "Bad Slug"
        assert Select(driver.find_element(By.NAME, "database_connection_config_key")).first_selected_option.text == "Shared"
        check_page(driver, "new-graph-invalid")

        create_graph(driver, args.slug, "External graph", "Shared")
        assert driver.current_url.endswith("/graphs/" + args.slug), driver.current_url
        assert text(driver, "graph-database") == "Database: Shared"
        assert text(driver, "graph-status") == "active"
        check_page(driver, "graph")

        driver.get(url("/graphs?database=Shared"))
        rows = driver.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == [args.slug], "the filter shows the Shared graphs only"
        assert rows[0].find_elements(By.TAG_NAME, "td")[3].text == "Shared"

        create_graph(driver, args.failing_slug, "Failing graph", "Broken")
        assert driver.current_url.endswith("/graphs/" + args.failing_slug), driver.current_url
        assert text(driver, "graph-status") == "error"
        assert "create-graph-schema" in text(driver, "failure-reason"), text(driver, "failure-reason")
        assert driver.find_element(By.XPATH, "//button[text()='Retry']")
        check_page(driver, "graph-error")
        print(json.dumps({"cookie": "kt_session=" + driver.get_cookie("kt_session")["value"]}))
    finally:
        driver.quit()


def phase2():
    """Retry, members, the node pages, hard delete, CSRF, JavaScript off."""
    driver = browser()
    try:
        sign_in(driver, args.admin_token)
        driver.get(url("/graphs/" + args.failing_slug))
        click_and_wait(driver, driver.find_element(By.XPATH, "//button[text()='Retry']"))
        assert text(driver, "graph-status") == "active", "Retry converges to active"
        assert "Provisioning succeeded" in driver.find_element(By.CSS_SELECTOR, "p.notice").text

        # Members: add by e-mail, the last-admin rule, remove.
        driver.get(url("/graphs/" + args.slug))
        driver.find_element(By.NAME, "user").send_keys(args.member_email)
        Select(driver.find_element(By.ID, "member-role")).select_by_visible_text("writer")
        click_and_wait(driver, driver.find_element(By.XPATH, "//button[text()='Add member']"))
        assert args.member_email in driver.find_element(By.ID, "members-title").find_element(By.XPATH, "..").text
        admin_row = driver.find_element(By.XPATH, f"//td[text()='{args.admin_email}']/..")
        Select(admin_row.find_element(By.TAG_NAME, "select")).select_by_visible_text("reader")
        click_and_wait(driver, admin_row.find_element(By.XPATH, ".//button[text()='Change']"))
        assert "at least one admin" in text(driver, "member-error"), "the last-admin rule is shown"
        check_page(driver, "graph-members-error")
        click_and_wait(driver, driver.find_element(By.XPATH, f"//button[@aria-label='Remove {args.member_email}']"))
        assert args.member_email not in driver.find_element(By.ID, "members-title").find_element(By.XPATH, "..").text
        click_and_wait(driver, driver.find_element(By.XPATH, f"//button[@aria-label='Remove {args.admin_email}']"))
        assert "last admin" in text(driver, "member-error")

        # Nodes: the <script> concept is text, search and paging, the node page.
        driver.get(url(f"/graphs/{args.data_slug}/nodes"))
        check_page(driver, "nodes")
        assert driver.find_element(By.LINK_TEXT, "<script>alert(1)</script>")
        assert "<script>alert(1)</script>" in driver.page_source.replace("&lt;", "<").replace("&gt;", ">")
        assert "<script>alert(1)</script>" not in driver.page_source, "the concept is escaped"
        click_and_wait(driver, driver.find_element(By.LINK_TEXT, "Next page"))
        assert "page=2" in driver.current_url
        driver.get(url(f"/graphs/{args.data_slug}/nodes?search=Parent"))
        links = driver.find_elements(By.CSS_SELECTOR, "tbody a")
        assert [l.text for l in links] == ["Parent node"], [l.text for l in links]
        click_and_wait(driver, links[0])
        check_page(driver, "node")
        assert "Child node" in driver.find_element(By.ID, "children-title").find_element(By.XPATH, "..").text
        assert "A fact about the parent" in driver.find_element(By.ID, "facts-title").find_element(By.XPATH, "..").text
        click_and_wait(driver, driver.find_element(By.LINK_TEXT, "Child node"))
        assert driver.find_element(By.TAG_NAME, "h1").text == "Child node"
        click_and_wait(driver, driver.find_element(By.LINK_TEXT, "Parent"))
        assert driver.find_element(By.TAG_NAME, "h1").text == "Parent node"

        driver.get(url("/database-connections"))
        names = [r.find_elements(By.TAG_NAME, "td")[0].text for r in driver.find_elements(By.CSS_SELECTOR, "tbody tr")]
        assert names[0] == "default" and "Shared" in names, names
        check_page(driver, "database-connections")
        driver.find_element(By.ID, "conn-name").send_keys("Nowhere")
        driver.find_element(By.ID, "conn-key").send_keys("nowhere")
        click_and_wait(driver, driver.find_element(By.XPATH, "//button[text()='Add database']"))
        assert "not configured" in driver.find_element(By.CSS_SELECTOR, "p.error").text

        # Hard delete needs the typed slug, then frees it.
        driver.get(url("/graphs/" + args.failing_slug))
        forms = driver.find_elements(By.CSS_SELECTOR, "form[action$='/delete']")
        forms[1].find_element(By.NAME, "confirm").send_keys("wrong")
        click_and_wait(driver, forms[1].find_element(By.TAG_NAME, "button"))
        assert "type the slug" in driver.find_element(By.CSS_SELECTOR, "p.error").text
        forms = driver.find_elements(By.CSS_SELECTOR, "form[action$='/delete']")
        forms[1].find_element(By.NAME, "confirm").send_keys(args.failing_slug)
        click_and_wait(driver, forms[1].find_element(By.TAG_NAME, "button"))
        assert "slug is free" in driver.find_element(By.CSS_SELECTOR, "p.notice").text
        create_graph(driver, args.failing_slug, "Slug reused", "default")
        assert text(driver, "graph-status") == "active", "the freed slug can be used again"

        # CSRF: a POST without the token is refused, with a valid session cookie or at sign-in.
        cookie = "kt_session=" + driver.get_cookie("kt_session")["value"]
        assert raw_post("/graphs/new", {"slug": "csrf_probe", "name": "x"}, cookie) == 403
        assert raw_post("/graphs/new", {"slug": "csrf_probe", "name": "x", "csrf_token": "forged"}, cookie) == 403
        assert raw_post("/login", {"token": args.admin_token}) == 403
        assert raw_post(f"/graphs/{args.slug}/delete", {"hard": "1", "confirm": args.slug}, cookie) == 403

        # Sign out ends the session on the server too.
        driver.get(url("/graphs"))
        click_and_wait(driver, driver.find_element(By.XPATH, "//button[text()='Sign out']"))
        assert driver.current_url.endswith("/login")
        assert raw_post("/graphs/new", {"slug": "csrf_probe", "name": "x"}, cookie) == 303, "an ended session is sent to /login"
    finally:
        driver.quit()

    # A plain user: no "New graph", no admin pages.
    driver = browser()
    try:
        sign_in(driver, args.user_token)
        assert not driver.find_elements(By.LINK_TEXT, "New graph")
        driver.get(url("/graphs/new"))
        assert driver.find_element(By.TAG_NAME, "h1").text == "Not allowed"
        check_page(driver, "forbidden")
    finally:
        driver.quit()

    # JavaScript off: creating a graph still works.
    args.javascript_off = True
    driver = browser(javascript=False)
    try:
        sign_in(driver, args.admin_token)
        create_graph(driver, args.nojs_slug, "Made without JavaScript", "default")
        assert driver.current_url.endswith("/graphs/" + args.nojs_slug), (driver.current_url, driver.find_element(By.TAG_NAME, "main").text)
        assert text(driver, "graph-status") == "active"
    finally:
        driver.quit()
    args.javascript_off = False


def phase3():
    """The connections list fails: the page says so and submit is disabled."""
    driver = browser()
    try:
        sign_in(driver, args.admin_token)
        driver.get(url("/graphs/new"))
        assert "could not be loaded" in driver.find_element(By.CSS_SELECTOR, "p.error").text
        assert not driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").is_enabled()
        check_page(driver, "new-graph-connections-down")
    finally:
        driver.quit()


def main():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", type=int)
    for name in ("--base", "--admin-token", "--user-token", "--screenshots", "--slug", "--failing-slug", "--data-slug",
                 "--nojs-slug", "--member-email", "--admin-email"):
        parser.add_argument(name, default="")
    args = parser.parse_args()
    args.javascript_off = False
    {1: phase1, 2: phase2, 3: phase3}[args.phase]()
    print(f"phase {args.phase} passed")


if __name__ == "__main__":
    main()
