"""The console's credentials page (web/console/credentials.*, docs/console.md
"Credentials") in a real browser, on the admin routes /v1/admin/credentials
(src/server/handlers_credentials.c): an admin rotates a credential with the
old secret ending now (the old secret then fails POST /v1/token, the new one
works), creates one and revokes it; an auditor's rotation is refused (403
through the session, shown in Chinese, the secret unchanged); an admin of
another seller sees only its seller's credentials and cannot rotate one of
seller 1.  The browser fixtures are test_console_browser.py's.  The routes'
refusals (bad input, admin credentials kept for the CLI, taken ids, revoked
credentials) are checked over the API, on every build."""
import json
import subprocess
import time

import pytest

from conftest import BIN, REPO, SLOW, assert_problem
from test_console import PASSWORD, users
from test_console_browser import browser, screenshot, sign_in, wait_for  # noqa: F401
# the browser tests run once, on the optimised build (test_console_browser.py)
from test_console_browser import pytestmark as browser_only


def cli(srv, *args):
    out = subprocess.run([BIN] + list(args) + ["--data-dir", str(srv.data_dir)],
                         capture_output=True, text=True, timeout=60 * SLOW, env={"LANG": "C"})
    assert out.returncode == 0, out.stderr
    return out.stdout


def credential(srv, cid, seller=1):
    doc = json.loads(cli(srv, "keys", "create", "--roles", "issuer", "--client-id", cid,
                         "--seller-id", str(seller), "--json"))
    return doc["client_secret"]


@pytest.fixture
def world(make_server):
    """Sellers 1 and 2; the people wang (admin, 1), zhou (auditor, 1) and sun
    (admin, 2); the issuer credentials erp-1 (seller 1) and erp-2 (seller 2),
    and admin-1, an admin credential of seller 1."""
    srv = make_server(start=False, serve_args=["--console-dir", str(REPO / "web" / "console")])
    seller2 = cli(srv, "sellers", "add", "--name", "第二销售方有限公司",
                  "--uscc", "91310000MA1FL0000N").strip()
    assert seller2 == "2", seller2
    tokens = {}
    for name, role, seller in (("wang", "admin", 1), ("zhou", "auditor", 1), ("sun", "admin", 2)):
        tokens[name] = users(srv, "add", "--user", name, "--roles", role, "--seller-id",
                             str(seller), "--password-stdin",
                             stdin=PASSWORD + "\n").stdout.strip()
    secrets = {"erp-1": credential(srv, "erp-1"), "erp-2": credential(srv, "erp-2", 2)}
    cli(srv, "keys", "create", "--roles", "admin", "--client-id", "admin-1", "--json")
    srv.start()
    return srv, tokens, secrets


def on_page(world, drv, user):
    """user signed in (test_console_browser.sign_in) and on the credentials
    page; the server and the credentials' secrets."""
    from selenium.webdriver.common.by import By
    srv, tokens, secrets = world
    sign_in(drv, srv, user, tokens[user])
    drv.find_element(By.CSS_SELECTOR, "#menu a[href='credentials.html']").click()
    wait_for(drv, lambda d: d.current_url.endswith("/console/credentials.html"), "the page")
    wait_for(drv, lambda d: user in d.find_element(By.ID, "who").text, "the session")
    assert drv.find_element(By.TAG_NAME, "h1").text == "凭据"
    return srv, secrets


def listed(drv):
    from selenium.webdriver.common.by import By
    return [r.get_attribute("id")[len("cred-"):]
            for r in drv.find_elements(By.CSS_SELECTOR, "#credentials tbody tr")]


def token_status(srv, cid, secret):
    return srv.get_token_response(cid, secret).status


def act_by_id(drv, cid, overlap="86400"):
    """The rotate form, by client id (the way to reach a credential the list
    does not show); the message cleared first."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    drv.execute_script("document.getElementById('message').textContent = ''")
    drv.find_element(By.ID, "a-id").clear()
    drv.find_element(By.ID, "a-id").send_keys(cid)
    Select(drv.find_element(By.ID, "a-overlap")).select_by_value(overlap)
    drv.find_element(By.ID, "rotate").click()
    return wait_for(drv, lambda d: d.find_element(By.ID, "message").text, "the answer")


@browser_only
def test_admin_rotates_creates_and_revokes(world, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    drv = browser
    srv, secrets = on_page(world, drv, "wang")
    wait_for(drv, lambda d: "erp-1" in listed(d), "the list")
    # seller 1's credentials only (the demo one, erp-1, admin-1), never a secret
    assert "erp-2" not in listed(drv) and {"erp-1", "admin-1"} <= set(listed(drv))
    assert "fps_" not in drv.find_element(By.ID, "credentials").text
    # an admin credential is the CLI's: no buttons on its row
    assert not drv.find_elements(By.CSS_SELECTOR, "#cred-admin-1 button")
    assert "fapiao keys" in drv.find_element(By.ID, "cred-admin-1").text

    # rotate erp-1 from its row, the old secret ending now
    assert token_status(srv, "erp-1", secrets["erp-1"]) == 200
    Select(drv.find_element(By.ID, "a-overlap")).select_by_value("0")
    drv.find_element(By.CSS_SELECTOR, "#cred-erp-1 button.rotate").click()
    wait_for(drv, lambda d: d.find_element(By.ID, "secret-box").is_displayed(), "the secret")
    new = drv.find_element(By.ID, "secret").text
    assert new.startswith("fps_") and new != secrets["erp-1"]
    assert drv.find_element(By.ID, "secret-id").text == "erp-1"
    assert "只显示这一次" in drv.find_element(By.CSS_SELECTOR, "#secret-box .warning").text
    assert drv.find_element(By.ID, "copy").is_displayed()
    screenshot(drv, tmp_path, "console-credentials.png")
    assert token_status(srv, "erp-1", secrets["erp-1"]) == 401  # the old secret: gone
    assert token_status(srv, "erp-1", new) == 200
    drv.find_element(By.ID, "saved").click()
    assert not drv.find_element(By.ID, "secret-box").is_displayed()
    assert drv.find_element(By.ID, "secret").get_attribute("textContent") == ""

    # create erp-3, then revoke it (the page asks first)
    drv.find_element(By.ID, "c-id").send_keys("erp-3")
    drv.find_element(By.ID, "c-reviewer").click()
    drv.find_element(By.CSS_SELECTOR, "#create button[type=submit]").click()
    wait_for(drv, lambda d: d.find_element(By.ID, "secret-box").is_displayed(), "the new secret")
    secret3 = drv.find_element(By.ID, "secret").text
    assert drv.find_element(By.ID, "secret-id").text == "erp-3"
    r = srv.get_token_response("erp-3", secret3)
    assert r.status == 200 and r.json()["scope"] == "issuer,reviewer", r
    wait_for(drv, lambda d: "erp-3" in listed(d), "erp-3 in the list")
    drv.find_element(By.CSS_SELECTOR, "#cred-erp-3 button.revoke").click()
    drv.switch_to.alert.accept()
    wait_for(drv, lambda d: "已吊销" in d.find_element(By.ID, "message").text, "the revocation")
    assert "已吊销" in drv.find_element(By.ID, "cred-erp-3").text
    assert token_status(srv, "erp-3", secret3) == 401
    # a second rotation of the revoked one: the API's 409, in Chinese
    assert act_by_id(drv, "erp-3").startswith("409 凭据已吊销")

    audit = srv.db_query("SELECT actor, action, target, seller_id FROM audit WHERE action LIKE "
                         "'credentials.admin_%' ORDER BY id")
    assert audit == [("user:wang", "credentials.admin_rotate", "erp-1", 1),
                     ("user:wang", "credentials.admin_create", "erp-3", 1),
                     ("user:wang", "credentials.admin_revoke", "erp-3", 1)]


@browser_only
def test_auditor_cannot_rotate(world, browser):
    from selenium.webdriver.common.by import By
    drv = browser
    srv, secrets = on_page(world, drv, "zhou")
    # the list itself is refused: the API's 403 on the page, in Chinese
    msg = wait_for(drv, lambda d: d.find_element(By.ID, "message").text, "the refusal")
    assert msg.startswith("403 缺少权限 credentials:admin"), msg
    assert listed(drv) == []
    # and the rotate control: refused through the session, nothing changed
    msg = act_by_id(drv, "erp-1", "0")
    assert msg.startswith("403 缺少权限 credentials:admin") and "auditor" in msg, msg
    assert not drv.find_element(By.ID, "secret-box").is_displayed()
    assert token_status(srv, "erp-1", secrets["erp-1"]) == 200
    want = ("user:zhou", "POST /v1/admin/credentials/erp-1/rotate")
    deadline = time.time() + 15 * SLOW  # the refusals' records are written by a queue
    while True:
        denied = srv.db_query("SELECT actor, target FROM audit WHERE action = 'auth.denied'")
        if want in denied or time.time() > deadline:
            break
        time.sleep(0.2)
    assert want in denied, denied


@browser_only
def test_admin_of_another_seller_sees_its_own_only(world, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    drv = browser
    srv, secrets = on_page(world, drv, "sun")
    wait_for(drv, lambda d: listed(d), "the list")
    assert listed(drv) == ["erp-2"]
    # seller 1's credential does not exist for seller 2's admin
    msg = act_by_id(drv, "erp-1", "0")
    assert msg.startswith("404 本销售方没有凭据 erp-1"), msg
    assert token_status(srv, "erp-1", secrets["erp-1"]) == 200
    # its own: rotated, the old secret kept for 24 h
    Select(drv.find_element(By.ID, "a-overlap")).select_by_value("86400")
    drv.find_element(By.CSS_SELECTOR, "#cred-erp-2 button.rotate").click()
    wait_for(drv, lambda d: d.find_element(By.ID, "secret-box").is_displayed(), "the secret")
    new = drv.find_element(By.ID, "secret").text
    assert drv.find_element(By.ID, "secret-until").text  # when the old one ends, in CST
    assert token_status(srv, "erp-2", new) == 200
    assert token_status(srv, "erp-2", secrets["erp-2"]) == 200


def test_refusals_over_the_api(make_server):
    """The demo credential holds admin on seller 1 (fapiao init)."""
    srv = make_server()
    cli(srv, "keys", "create", "--roles", "operator", "--client-id", "ops-1", "--json")
    base = "/v1/admin/credentials"
    for body, code, field in (({}, "FIELD_REQUIRED", "roles"),
                              ({"roles": 1}, "FIELD_TYPE", "roles"),
                              ({"roles": "wizard"}, "INVALID_FIELD", "roles"),
                              ({"roles": "issuer", "name": "x"}, "UNKNOWN_FIELD", "name"),
                              ({"roles": "issuer", "client_id": "a|b"}, "INVALID_FIELD",
                               "client_id"),
                              ({"roles": "issuer", "allowed_ips": "10.0.0.0/33"},
                               "INVALID_FIELD", "allowed_ips"),
                              ({"roles": "issuer", "allowed_ips": ",".join(
                                  ["2001:db8:aaaa:bbbb:cccc:dddd:eeee:%x" % i
                                   for i in range(16, 31)])},  # 15 entries, 554 characters
                               "INVALID_FIELD", "allowed_ips")):
        assert_problem(srv.post_json(base, body), 400, code, field)
    for roles in ("admin", "issuer,admin", "operator"):  # the CLI's, never the API's
        assert_problem(srv.post_json(base, {"roles": roles}), 403, "CREDENTIAL_PROTECTED")
    r = srv.post_json(base, {"roles": "issuer", "client_id": "erp-9",
                             "allowed_ips": "127.0.0.1"})
    assert r.status == 201 and r.header("Cache-Control") == "no-store", r
    assert r.json()["client_secret"].startswith("fps_") and r.json()["roles"] == "issuer"
    assert_problem(srv.post_json(base, {"roles": "issuer", "client_id": "erp-9"}), 409,
                   "CREDENTIAL_EXISTS")
    generated = srv.post_json(base, {"roles": "auditor"}).json()["client_id"]
    assert generated.startswith("cli-"), generated

    assert_problem(srv.post_json(base + "/erp-9/rotate", {"overlap_seconds": -1}), 400,
                   "INVALID_FIELD", "overlap_seconds")
    assert_problem(srv.post_json(base + "/nobody/rotate", {}), 404, "NOT_FOUND")
    assert_problem(srv.post_json(base + "/ops-1/rotate", {}), 404, "NOT_FOUND")  # not a seller's
    assert_problem(srv.post_json(base + "/%s/rotate" % srv.client_id, {}), 403,
                   "CREDENTIAL_PROTECTED")  # its own (an admin): no token-only rotation
    r = srv.post_json(base + "/erp-9/rotate", {"overlap_seconds": 0})
    assert r.status == 200 and r.header("Cache-Control") == "no-store", r
    assert r.json()["previous_secrets_valid_until"] <= int(time.time()) + 1
    assert srv.post_json(base + "/erp-9/revoke", {}).status == 200
    assert_problem(srv.post_json(base + "/erp-9/revoke", {}), 409, "CREDENTIAL_STATE")
    assert_problem(srv.post_json(base + "/erp-9/rotate", {}), 409, "CREDENTIAL_STATE")

    r = srv.request("GET", base)
    assert r.status == 200 and b"fps_" not in r.body, r
    by_id = {c["client_id"]: c for c in r.json()["credentials"]}
    assert "ops-1" not in by_id and r.json()["seller_id"] == 1
    assert by_id["erp-9"]["state"] == "revoked" and by_id["erp-9"]["allowed_ips"] == "127.0.0.1"
    assert by_id["erp-9"]["managed_here"] and not by_id[srv.client_id]["managed_here"]
    assert by_id[generated]["roles"] == "auditor" and by_id[generated]["state"] == "active"
