#!/usr/bin/env python3
"""The consoles end to end in a real headless Chromium (Selenium) against the real piam-admind
and piamd on the demo database (Tests/console/run.sh starts them and passes their addresses).

The story: the business approves a registration and issues its first admin a new invitation;
the new partner's admin accepts it, creates a sub-org, invites a person; the person accepts;
the admin grants a role (only what can_assign allows is offered); piamd allows the person's
request at the revision the console showed (min_revision); the admin suspends the sub-org
(the confirmation says how many people it cuts off) and piamd denies the person. Then what
must be refused is: a cross-site POST without the CSRF token, a forged grant outside the
ceiling, and a person named <script>alert(1)</script> is shown as text. Then the business
starts an access review of a partner and one of the partner's admins revokes an item of it.
Last, the business rolls out a new service to all partners after its what-if preview, and
piamd allows an agent's request for its permission at the revision the commit answered.

With PIAM_SCREENSHOTS=DIR, each main page is saved at desktop (1280) and phone (390) widths.
Prints "N passed, N failed" and exits non-zero on any failure.
"""
import os
import re
import subprocess
import sys
import time
import traceback

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE = os.environ["PIAM_CONSOLE_URL"].rstrip("/")
PIAMCTL = os.environ["PIAM_PIAMCTL"]
SOCKET = os.environ["PIAM_SOCKET"]
SHOTS = os.environ.get("PIAM_SCREENSHOTS")

passed, failed = 0, 0


def step(name):
    def wrap(fn):
        global passed, failed
        started = time.monotonic()
        try:
            fn()
            passed += 1
            print(f"ok   {name} ({time.monotonic() - started:.1f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {name}", flush=True)
            traceback.print_exc()
            if os.environ.get("PIAM_E2E_DEBUG"):
                print(driver.page_source[:4000])
        return fn
    return wrap


def browser():
    o = Options()
    o.add_argument("--headless=new")
    o.add_argument("--no-sandbox")
    o.add_argument("--disable-dev-shm-usage")
    o.add_argument("--disable-gpu")
    o.add_argument("--window-size=1280,900")
    o.binary_location = os.environ.get("PIAM_CHROMIUM", "/usr/bin/chromium")
    return webdriver.Chrome(service=Service(os.environ.get("PIAM_CHROMEDRIVER", "/usr/bin/chromedriver")), options=o)


driver = browser()
driver.set_page_load_timeout(30)


def go(path):
    driver.get(BASE + path)


def text():
    return driver.find_element(By.TAG_NAME, "body").text


def click(css):
    """Clicks a submit button or a link and waits for the next page to have loaded (a mark
    left on the old page's window is gone). Errors while the page changes count as not yet."""
    driver.execute_script("window.__piamOld = 1")
    driver.find_element(By.CSS_SELECTOR, css).click()

    def loaded(d):
        try:
            return d.execute_script("return window.__piamOld === undefined && document.readyState === 'complete'")
        except WebDriverException:
            return False
    WebDriverWait(driver, 15).until(loaded)


def fill(css, value):
    e = driver.find_element(By.CSS_SELECTOR, css)
    e.clear()
    e.send_keys(value)


def flash():
    return driver.find_element(By.ID, "flash").text


def revision_of(message):
    m = re.search(r"revision (\d+)", message)
    assert m, f"no revision in {message!r}"
    return int(m.group(1))


def sign_in(user):
    driver.delete_all_cookies()
    go("/console/demo-sign-in")
    fill("#demo-user", user)
    click("#demo-go")
    assert driver.find_element(By.ID, "who").text == user, text()


def accept(link, identity):
    driver.delete_all_cookies()
    driver.get(link)
    fill("#accept-identity", identity)
    click("#accept")
    assert "/console/me" in driver.current_url, driver.current_url


def piamd_check(subject, action, resource, org, revision):
    r = subprocess.run([PIAMCTL, "check", "--socket", SOCKET, "--min-revision", str(revision), subject, action, resource,
                        "--prop", f"org={org}"], capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


def shot(name):
    """Saves the page at desktop and phone widths, whole (up to 2400 pixels high): the window is
    made as tall as the page plus the browser's own frame (window height minus viewport height)."""
    if not SHOTS:
        return
    os.makedirs(SHOTS, exist_ok=True)
    for label, width in (("desktop", 1280), ("phone", 390)):
        driver.set_window_size(width, 900)
        frame = 900 - driver.execute_script("return window.innerHeight")
        height = driver.execute_script("return Math.min(document.documentElement.scrollHeight, 2400)")
        driver.set_window_size(width, max(600, height) + frame)
        driver.save_screenshot(os.path.join(SHOTS, f"console-{name}-{label}.png"))
    driver.set_window_size(1280, 900)


state = {}


@step("the business approves a registration with its entitlements")
def approve():
    sign_in("nina.hq")
    assert "/console/dashboard" in driver.current_url
    assert "pending registrations" in text()
    shot("dashboard")
    go("/console/partners")
    shot("partners")
    go("/console/orgs/newleaf-agency")
    assert driver.find_element(By.ID, "org-status").text == "pending"
    for role in ("partner-admin", "quote-creator", "quote-manager", "policy-viewer"):
        driver.find_element(By.CSS_SELECTOR, f'#approve-form input[value="{role}"]').click()  # no navigation
    shot("registration")
    click("#approve")
    assert "approved" in flash().lower() or "revision" in flash(), flash()
    assert driver.find_element(By.ID, "org-status").text == "active"
    # Its first admin was invited at registration: the business gives it quote-manager (what
    # it may then hand out: quote-creator) and issues a new invitation link.
    go("/console/people/newleaf-agency-admin")
    Select(driver.find_element(By.ID, "grant-role")).select_by_value("quote-manager|newleaf-agency")
    click("#grant")
    assert "revision" in flash(), text()
    click("#resend")
    state["admin_link"] = driver.find_element(By.ID, "invitation-link").get_attribute("href")


@step("the new partner's admin accepts, creates a sub-org and invites a person")
def invite():
    accept(state["admin_link"], "okta|newleaf-admin")
    assert driver.find_element(By.ID, "who").text == "newleaf-agency-admin"
    go("/console")
    assert "/console/orgs/newleaf-agency" in driver.current_url, driver.current_url
    fill("#suborg-id", "newleaf-agency-west")
    fill("#suborg-name", "Newleaf West")
    click("#create-suborg")
    assert "Newleaf West" in text()
    go("/console/orgs/newleaf-agency-west")
    fill("#invite-user", "pat.newleaf")
    fill("#invite-name", "Pat Newleaf")
    fill("#invite-email", "pat@newleaf.example")
    click("#invite")
    state["pat_link"] = driver.find_element(By.ID, "invitation-link").get_attribute("href")
    shot("org")


@step("the person accepts the invitation and sees their own page")
def person_accepts():
    accept(state["pat_link"], "okta|pat")
    assert driver.find_element(By.ID, "me-id").text == "pat.newleaf"
    shot("me")


@step("the admin grants a role, offered only what can_assign allows")
def grant():
    sign_in("newleaf-agency-admin")
    go("/console/people/pat.newleaf")
    options = [o.get_attribute("value") for o in Select(driver.find_element(By.ID, "grant-role")).options]
    assert "quote-creator|newleaf-agency-west" in options, options
    assert not any(o.startswith("claims-adjuster|") for o in options), options  # outside the ceiling
    assert not any(o.endswith("|newleaf-agency") for o in options), options  # above the person's org
    code, out = piamd_check("pat.newleaf", "create", "quote:Q-NEW-1", "newleaf-agency-west", 0)
    assert code == 1 and "no_permission" in out, f"allowed before the grant: {out}"
    Select(driver.find_element(By.ID, "grant-role")).select_by_value("quote-creator|newleaf-agency-west")
    click("#grant")
    state["grant_revision"] = revision_of(flash())
    shot("person")


@step("piamd allows the person's request at the console's revision (min_revision)")
def allowed():
    code, out = piamd_check("pat.newleaf", "create", "quote:Q-NEW-1", "newleaf-agency-west", state["grant_revision"])
    assert code == 0 and "allow" in out, out


@step("the admin suspends the sub-org after a confirmation, and piamd denies the person")
def suspend():
    go("/console/orgs/newleaf-agency-west")
    click("#suspend")
    assert "cuts off 1 people" in driver.find_element(By.ID, "cut-off").text, text()
    shot("confirm-suspend")
    click("#confirm-suspend")
    revision = revision_of(flash())
    assert driver.find_element(By.ID, "org-status").text == "suspended"
    code, out = piamd_check("pat.newleaf", "create", "quote:Q-NEW-1", "newleaf-agency-west", revision)
    assert code == 1 and "org_inactive" in out, out


@step("a cross-site POST without the CSRF token is refused")
def cross_site():
    sign_in("newleaf-agency-admin")
    page = ("data:text/html,<form method=post action='" + BASE + "/console/act'>"
            "<input name=op value=user.suspend><input name=user value=pat.newleaf></form>"
            "<script>document.forms[0].submit()</script>")
    driver.get(page)
    time.sleep(1)
    assert "csrf" in driver.page_source, driver.page_source[:500]
    go("/console/people/pat.newleaf")
    assert driver.find_element(By.ID, "person-status").text == "active"


@step("a forged grant outside the ceiling is refused with its reason")
def forged():
    go("/console/people/pat.newleaf")
    # Rewrite the form as an attacker would: a role the page never offered.
    driver.execute_script("""
        const s = document.getElementById('grant-role');
        const o = document.createElement('option'); o.value = 'claims-adjuster|newleaf-agency-west'; o.text = 'forged';
        s.appendChild(o); s.value = o.value;""")
    click("#grant")
    assert driver.find_element(By.ID, "code").text == "outside_ceiling", text()
    shot("refused")


@step("a person named <script>alert(1)</script> is shown as text")
def escaping():
    go("/console/orgs/newleaf-agency")
    fill("#invite-user", "mallory")
    fill("#invite-name", "<script>alert(1)</script>")
    click("#invite")
    go("/console/people/mallory")
    try:
        driver.switch_to.alert
        raise AssertionError("an alert ran")
    except NoAlertPresentException:
        pass
    assert driver.find_element(By.ID, "person-name").text == "<script>alert(1)</script>"


@step("the business's other pages: people, roles, audit, the demo sign-in")
def business_pages():
    driver.delete_all_cookies()
    go("/console/demo-sign-in")
    shot("demo-sign-in")
    sign_in("acme-brokers-admin")
    go("/console/people?org=acme-brokers-north")
    assert "People of" in text()
    shot("people")
    sign_in("nina.hq")
    go("/console/roles")
    shot("roles")
    go("/console/audit?refused=1")
    assert "refused" in text()
    shot("audit")
    go("/console/dashboard")
    assert "outside_ceiling" in text()  # the forged grant, among the recent refusals
    shot("dashboard")


@step("the business starts an access review of a partner; the dormant-access page")
def review_created():
    sign_in("nina.hq")
    go("/console/reviews")
    fill("#review-name", "Acme Brokers Q4 access review")
    driver.find_element(By.ID, "scope-partner").click()  # no navigation
    Select(driver.find_element(By.ID, "review-partner")).select_by_value("acme-brokers")
    driver.find_element(By.ID, "no-answer-revoke").click()
    click("#create-review")
    assert "items frozen" in flash(), text()
    m = re.search(r"/console/reviews/(\d+)$", driver.current_url)
    assert m, driver.current_url
    state["review"] = m.group(1)
    assert driver.find_element(By.ID, "completion").text == "0%", text()
    shot("review")
    go("/console/reviews")
    shot("reviews")
    go("/console/dormant")
    assert "Dormant access" in text() and driver.find_elements(By.CSS_SELECTOR, "#findings tbody tr"), text()
    shot("dormant")


@step("a partner admin revokes a review item in the browser, with a comment")
def review_revoked():
    sign_in("acme-brokers-admin")
    go("/console/reviews")
    click(f"#tasks-{state['review']}")
    shot("review-items")
    form = driver.find_element(By.CSS_SELECTOR, "#items form")
    item = form.find_element(By.CSS_SELECTOR, "input[name=comment]").get_attribute("id").removeprefix("comment-")
    fill(f"#comment-{item}", "left the company <b>in June</b>")
    click(f"#revoke-{item}")
    assert "revoked role" in flash(), text()
    assert not driver.find_elements(By.ID, f"item-{item}"), "still listed among the unanswered"
    go(f"/console/reviews/{state['review']}/items")
    answer = driver.find_element(By.CSS_SELECTOR, f"#item-{item} .answer").text
    assert "Answered revoke by acme-brokers-admin" in answer and "<b>in June</b>" in answer, answer
    assert not driver.find_elements(By.ID, f"revoke-{item}")


@step("the business rolls out a new service to all partners after its what-if preview, and piamd allows it")
def rollout():
    agent, org = "acme-brokers-north-b1-agent1", "acme-brokers-north-b1"
    code, out = piamd_check(agent, "create", "signature:S-1", org, 0)
    assert code == 1, f"allowed before the roll-out: {out}"
    sign_in("nina.hq")
    go("/console/roles")
    click("#rollout")
    fill("#rollout-role", "e-signature")
    fill("#rollout-name", "E-signature")
    fill("#rollout-permissions", "signature:create\nsignature:view")
    # The defaults: every active partner, org-granted at its root with its sub-orgs.
    assert driver.find_element(By.ID, "rollout-all").is_selected()
    assert driver.find_element(By.ID, "rollout-org-grant").is_selected()
    shot("rollout")
    click("#rollout-preview")
    count = int(driver.find_element(By.ID, "gain-count").text)
    assert count > 0, text()
    totals = driver.find_element(By.ID, "gained-totals").text
    assert f"signature:create: {count} people" in totals, totals
    rows = driver.find_elements(By.CSS_SELECTOR, "#gains tbody tr")
    assert sum(int(r.find_elements(By.TAG_NAME, "td")[1].text) for r in rows) == count, text()
    assert any("acme-brokers" in r.text for r in rows), text()
    ops = driver.find_element(By.ID, "operations").get_attribute("textContent")  # folded under <details>
    assert "role.define role:e-signature" in ops and "org-grant org:acme-brokers" in ops, ops
    code, out = piamd_check(agent, "create", "signature:S-1", org, 0)
    assert code == 1, f"the preview wrote something: {out}"
    shot("rollout-preview")
    click("#rollout-commit")
    message = flash()
    assert "Rolled out e-signature" in message, message
    code, out = piamd_check(agent, "create", "signature:S-1", org, revision_of(message))
    assert code == 0 and "allow" in out, out


driver.quit()
print(f"console e2e: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
