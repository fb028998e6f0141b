"""Drives the operator console in Debian's headless Chromium (through its
chromedriver) the way an operator uses it, and prints what it saw as JSON.

    drive.py --url URL --token TOKEN --bad-token WRONG --plate PLATE --shots DIR

It refuses a wrong token first (the page must say so), logs in, waits for
the live view to draw frames with boxes, for reads in the table and for a
risk flag of PLATE, searches PLATE, and writes screenshots into DIR.
Any step that does not happen within --timeout seconds fails the script
(exit status 1, with what was seen so far).
"""

import argparse
import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def rows(driver, selector, having=None):
    """The cells' texts of the table rows that `selector` finds (those with
    an element matching `having`, if given), read in one script: the page
    redraws its tables as reads, flags and camera health arrive, so rows
    found first and read cell by cell afterwards may be gone by then."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])]"
        ".filter(tr => !arguments[1] || tr.querySelector(arguments[1]))"
        ".map(tr => [...tr.querySelectorAll('td')].map(td => td.innerText.trim()))",
        selector, having)


def texts(driver, selector, attribute=None):
    """The texts (or a property, such as a link's absolute `href`) of the
    elements `selector` finds, in one script."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])]"
        ".map(e => arguments[1] ? e[arguments[1]] : e.innerText.trim())",
        selector, attribute)


def wait(driver, what, seconds, check):
    until = time.time() + seconds
    while time.time() < until:
        value = check(driver)
        if value:
            return value
        time.sleep(0.25)
    raise TimeoutError(f"timed out waiting for {what}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--bad-token", required=True)
    parser.add_argument("--plate", required=True)
    parser.add_argument("--shots", required=True)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--latency-frames", type=int, default=100)
    args = parser.parse_args()
    os.makedirs(args.shots, exist_ok=True)

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1600,1300"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    seen = {"steps": []}
    try:
        driver.get(args.url)
        wait(driver, "the login form", 20, lambda d: d.find_element(By.ID, "token").is_displayed())
        seen["steps"].append("login form")

        driver.find_element(By.ID, "token").send_keys(args.bad_token)
        driver.find_element(By.ID, "login-button").click()
        seen["refused"] = wait(driver, "the refusal", 20, lambda d: d.find_element(By.ID, "login-error").text)
        seen["steps"].append("wrong token refused")

        driver.find_element(By.ID, "token").clear()
        driver.find_element(By.ID, "token").send_keys(args.token)
        driver.find_element(By.ID, "login-button").click()
        wait(driver, "the console", 20, lambda d: d.find_element(By.ID, "console").is_displayed())
        seen["who"] = driver.find_element(By.ID, "who").text
        seen["steps"].append("logged in")

        stats = lambda d: d.execute_script("return window.borderflowStats")
        wait(driver, "live frames with boxes", args.timeout,
             lambda d: any(c["frames"] >= 10 and c["max_boxes"] >= 1 for c in stats(d)["cameras"].values()))
        seen["steps"].append("live frames with boxes")
        driver.save_screenshot(os.path.join(args.shots, "console-live.png"))

        wait(driver, "a read in the table", args.timeout, lambda d: d.find_elements(By.CSS_SELECTOR, "#reads tbody tr"))
        seen["steps"].append("reads")
        flag = wait(driver, f"a risk flag of {args.plate}", args.timeout,
                    lambda d: [text for text in texts(d, "#flags li") if args.plate in text])
        seen["flag"] = flag[0]
        seen["clip_links"] = [href for href in texts(driver, "#flags li a", "href") if href]
        seen["steps"].append("risk flag")

        # Latency, frame decoded → drawn, over the frames drawn from here on.
        first = {k: c["frames"] for k, c in stats(driver)["cameras"].items()}
        wait(driver, "frames for the latency", args.timeout,
             lambda d: any(c["frames"] - first.get(k, 0) >= args.latency_frames for k, c in stats(d)["cameras"].items()))
        cameras = stats(driver)["cameras"]
        latencies = sorted(l for c in cameras.values() for l in c["latencies_ms"][-args.latency_frames:])
        seen["latency_ms"] = {
            "frames": len(latencies),
            "p50": latencies[len(latencies) // 2],
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "max": latencies[-1],
        }
        seen["reads"] = rows(driver, "#reads tbody tr")
        seen["crops_shown"] = driver.execute_script(
            "return [...document.querySelectorAll('#reads img')].filter(i => i.complete && i.naturalWidth > 0).length")
        seen["health"] = rows(driver, "#health tbody tr")
        seen["frames"] = {k: c["frames"] for k, c in cameras.items()}
        seen["max_boxes"] = {k: c["max_boxes"] for k, c in cameras.items()}
        # A canvas that was drawn on has pixels that are not all one colour.
        seen["canvas_colours"] = driver.execute_script("""
            const c = document.querySelector('#lanes canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const colours = new Set();
            for (let i = 0; i < d.length; i += 4 * 997) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
            return colours.size;""")
        driver.save_screenshot(os.path.join(args.shots, "console.png"))
        lane = driver.find_element(By.CSS_SELECTOR, "#lanes .lane")
        lane.screenshot(os.path.join(args.shots, "console-lane.png"))

        driver.find_element(By.ID, "search").send_keys(args.plate)
        driver.find_element(By.CSS_SELECTOR, "#search-form button").click()
        seen["search"] = wait(driver, "the search's answer", 30,
                              lambda d: rows(d, "#search-results tbody tr", ".plate"))
        seen["steps"].append("search")
        driver.save_screenshot(os.path.join(args.shots, "console-search.png"))
    except Exception as error:  # what was seen so far, and why it stopped
        seen["error"] = f"{type(error).__name__}: {error}"
        try:
            driver.save_screenshot(os.path.join(args.shots, "console-failed.png"))
            seen["console_log"] = [entry["message"] for entry in driver.get_log("browser")]
        except Exception:
            pass
    finally:
        driver.quit()
    print(json.dumps(seen))
    return 1 if "error" in seen else 0


if __name__ == "__main__":
    sys.exit(main())
