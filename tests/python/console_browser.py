"""The web console in a real browser (tests/tests/console.rs): Debian's
Chromium driven by Selenium through chromedriver.

A provider employee logs in to the АРМ РШЭП with their НУЦ key (signed in
the browser with WebCrypto), registers and completes an application that
`shep send` submitted, and the applicant's personal cabinet, open in another
tab, shows each status as it arrives, without a reload; the result is
downloaded with its signature checked. Screenshots of each page go to the
directory given. Prints what it saw as JSON.

    python3 console_browser.py CONFIG.json
"""

import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def browser(config):
    options = webdriver.ChromeOptions()
    options.binary_location = config["chromium"]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                 f"--user-data-dir={config['profile']}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=config["chromedriver"]), options=options)


def login(driver, wait, identity, provider=None):
    if provider:
        Select(driver.find_element(By.ID, "provider")).select_by_value(provider)
    driver.find_element(By.ID, "key").send_keys(identity["key"])
    driver.find_element(By.ID, "cert").send_keys(identity["cert"])
    driver.find_element(By.ID, "login-button").click()
    wait.until(lambda d: d.find_element(By.ID, "who").text or d.find_element(By.ID, "login-error").text)
    error = driver.find_element(By.ID, "login-error").text
    if error:
        raise SystemExit(f"login failed: {error}")


def act(driver, wait, action, **fields):
    Select(driver.find_element(By.ID, "action")).select_by_value(action)
    for field, value in fields.items():
        driver.execute_script("document.getElementById(arguments[0]).value = arguments[1];", field, value)
    driver.find_element(By.ID, "action-button").click()
    wait.until(lambda d: d.find_element(By.ID, "action-result").text)
    text = driver.find_element(By.ID, "action-result").text
    driver.execute_script("document.getElementById('action-result').textContent = '';")
    return text


def main():
    config = json.load(open(sys.argv[1]))
    shots = config["screenshots"]
    url = config["url"]
    out = {}
    driver = browser(config)
    wait = WebDriverWait(driver, 20)
    try:
        # The applicant's cabinet, in the first tab.
        driver.get(f"{url}/console/#/cabinet")
        wait.until(EC.visibility_of_element_located((By.ID, "login")))
        driver.save_screenshot(f"{shots}/login.png")
        login(driver, wait, config["applicant"])
        wait.until(EC.visibility_of_element_located((By.ID, "cabinet")))
        wait.until(lambda d: config["message_id"] in d.find_element(By.ID, "history-table").text)
        cabinet = driver.current_window_handle
        out["cabinet_before"] = driver.find_element(By.ID, "history-table").text

        # The employee's workstation, in a second tab.
        driver.switch_to.new_window("tab")
        driver.get(f"{url}/console/#/desk")
        wait.until(EC.visibility_of_element_located((By.ID, "login")))
        login(driver, wait, config["employee"], provider=config["provider"])
        wait.until(lambda d: config["message_id"] in d.find_element(By.ID, "desk-table").text)
        driver.save_screenshot(f"{shots}/desk.png")
        row = [r for r in driver.find_elements(By.CSS_SELECTOR, "#desk-table tbody tr")
               if config["message_id"] in r.text][0]
        row.find_element(By.TAG_NAME, "button").click()
        wait.until(EC.visibility_of_element_located((By.ID, "desk-detail")))
        out["signature_shown"] = driver.find_element(By.ID, "detail-facts").text
        out["registered"] = act(driver, wait, "REGISTERED", **{
            "reg-number": "КОНСОЛЬ-1", "expected": "2030-01-15T18:00", "reason": ""})
        out["in_work"] = act(driver, wait, "IN_WORK", **{"reg-number": "", "expected": ""})
        driver.save_screenshot(f"{shots}/desk-application.png")
        out["completed"] = act(driver, wait, "COMPLETED", **{"result-text": "Справка об опеке выдана"})

        # Back to the cabinet, never reloaded: the statuses arrived live.
        driver.switch_to.window(cabinet)
        wait.until(lambda d: "COMPLETED" in [li.get_attribute("data-status") for li in
                                             d.find_elements(By.CSS_SELECTOR, "#notifications li")])
        out["notified"] = [li.get_attribute("data-status") for li in
                           driver.find_elements(By.CSS_SELECTOR, "#notifications li")]
        out["reloaded"] = driver.execute_script(
            "return performance.getEntriesByType('navigation')[0].type")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#history-table button[data-result]"))
        driver.find_element(By.CSS_SELECTOR, "#history-table button[data-result]").click()
        wait.until(lambda d: d.find_element(By.ID, "result-check").text)
        out["result_check"] = driver.find_element(By.ID, "result-check").text
        out["cabinet_after"] = driver.find_element(By.ID, "history-table").text
        driver.save_screenshot(f"{shots}/cabinet.png")

        # The operator: the flow of envelopes and the gateway's settings,
        # through the Admin API under its token.
        driver.get(f"{url}/console/#/flow")
        wait.until(EC.visibility_of_element_located((By.ID, "admin-login")))
        driver.find_element(By.ID, "admin-token").send_keys(config["admin_token"])
        driver.find_element(By.ID, "admin-button").click()
        wait.until(EC.visibility_of_element_located((By.ID, "flow")))
        wait.until(lambda d: config["message_id"] in d.find_element(By.ID, "flow-table").text)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#hops figure"))
        out["flow_hops"] = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#hops figcaption")]
        out["flow_rows"] = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#flow-table tbody tr")
                            if config["message_id"] in r.text]
        driver.save_screenshot(f"{shots}/flow.png")

        driver.execute_script("location.hash = '#/operator';")
        wait.until(lambda d: config["provider"] in d.find_element(By.ID, "routes-table").text)
        route = driver.find_element(By.ID, "route-toml")
        route.send_keys("id = \"broken_v1\"\nname_ru = \"Сломанный\"\nkind = \"lookup\"\nsenders = [\"pep\"]\nchannels = [\"portal\"]\nregistry = \"nowhere\"")
        driver.find_element(By.ID, "route-button").click()
        wait.until(lambda d: d.find_element(By.ID, "route-result").text)
        out["route_refused"] = driver.find_element(By.ID, "route-result").text
        driver.find_element(By.ID, "fixture-json").send_keys('{"persons": "not a list"}')
        driver.find_element(By.ID, "fixture-button").click()
        wait.until(lambda d: d.find_element(By.ID, "fixture-result").text)
        out["fixtures_refused"] = driver.find_element(By.ID, "fixture-result").text
        driver.find_element(By.ID, "fault-button").click()
        wait.until(lambda d: "gbdfl-down" in d.find_element(By.ID, "faults-table").text)
        out["fault_added"] = driver.find_element(By.ID, "fault-result").text
        driver.save_screenshot(f"{shots}/operator.png")
        driver.find_element(By.CSS_SELECTOR, "#faults-table button[data-fault='gbdfl-down']").click()
        wait.until(lambda d: "gbdfl-down" not in d.find_element(By.ID, "faults-table").text)
        out["fault_deleted"] = True
    except Exception:
        # What the page showed when it went wrong, for the failure report.
        driver.save_screenshot(f"{shots}/failure.png")
        log("page at failure:", driver.current_url, driver.find_element(By.TAG_NAME, "main").text[:2000])
        raise
    finally:
        driver.quit()
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
