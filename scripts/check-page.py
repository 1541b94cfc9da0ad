"""Drives the search page of a running `tweetsim serve` in headless Chromium (selenium with
Debian's chromedriver) and checks what a person sees against what the API answers.
Usage: check-page.py BASE_URL SCREENSHOT.png PROFILE_DIR"""
import json
import sys
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.support.ui import WebDriverWait

base, shot, profile = sys.argv[1], sys.argv[2], sys.argv[3]
assert base.startswith("http://127."), f"loopback only, not {base}"


def api(path):
    with urllib.request.urlopen(base + path, timeout=60) as r:
        return json.load(r)


opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,2400",
          "--disable-background-networking", "--disable-component-update", "--no-first-run",
          f"--user-data-dir={profile}"]:
    opts.add_argument(a)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
wait = WebDriverWait(driver, 60)
passed, failed = 0, 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")


def wait_check(name, condition, detail=lambda: ""):
    """Waits for `condition`; records a failure (with `detail()`) if it never holds."""
    try:
        wait.until(lambda d: condition())
        check(name, True)
    except TimeoutException:
        check(name, False, detail())


def hits():
    return driver.find_elements(By.CSS_SELECTOR, "#results li.hit")


def submit(query):
    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys(query)
    box.send_keys(Keys.ENTER)


def wait_status(prefix_not="searching"):
    wait.until(lambda d: d.find_element(By.ID, "status").text
               and not d.find_element(By.ID, "status").text.startswith(prefix_not))


try:
    driver.get(base + "/")
    check("page title", driver.title == "tweetsim", driver.title)

    # 1. Type a query, see the API's hits in its order, each with date, likes and link.
    query = "tesla autopilot data engine"
    submit(query)
    wait.until(lambda d: len(hits()) == 10)
    want = [h["id"] for h in api("/similar?" + urllib.parse.urlencode({"q": query}))["hits"]]
    got = [h.get_attribute("data-id") for h in hits()]
    check("typed query shows the API's 10 hits in order", got == want, f"{got} vs {want}")
    first = hits()[0]
    date = first.find_element(By.CLASS_NAME, "date").text
    likes = first.find_element(By.CLASS_NAME, "likes").text
    link = first.find_element(By.CLASS_NAME, "link").get_attribute("href")
    check("a hit shows its date, likes and link",
          len(date) == 10 and date[4] == "-" and likes.endswith(" likes") and link.startswith("https://x.com/"),
          f"{date!r} {likes!r} {link!r}")
    text = first.find_element(By.CLASS_NAME, "text").text.lower()
    check("the top hit is on topic", any(w in text for w in ["tesla", "autopilot", "data engine", "fsd"]), text)

    # 2. Filters: dense mode, 5 results, no replies.
    driver.find_element(By.CSS_SELECTOR, "#mode option[value=dense]").click()
    k = driver.find_element(By.ID, "k")
    k.clear()
    k.send_keys("5")
    driver.find_element(By.ID, "no_replies").click()
    submit("teaching neural networks")
    wait.until(lambda d: len(hits()) == 5)
    want = [h["id"] for h in api("/similar?" + urllib.parse.urlencode(
        {"q": "teaching neural networks", "mode": "dense", "k": 5, "no_replies": "true"}))["hits"]]
    got = [h.get_attribute("data-id") for h in hits()]
    check("filters reach the API (dense, k=5, no replies)", got == want, f"{got} vs {want}")
    check("no reply among the hits", not driver.find_elements(By.CSS_SELECTOR, "#results .reply"))

    # 3. More like this.
    source = hits()[0].get_attribute("data-id")
    hits()[0].find_element(By.CLASS_NAME, "more").click()
    wait.until(lambda d: f"similar to tweet {source}" in d.find_element(By.ID, "status").text)
    got = [h.get_attribute("data-id") for h in hits()]
    want = [h["id"] for h in api(f"/tweets/{source}/similar?mode=dense&k=5&no_replies=true")["hits"]]
    check("more like this shows the tweet's neighbours, not itself", got == want and source not in got,
          f"{got} vs {want}")

    # 4. A bad filter is explained on the page.
    driver.execute_script("document.getElementById('since').value='2022-12-01';"
                          "document.getElementById('until').value='2022-01-01';")
    submit("gpt")
    wait.until(lambda d: d.find_element(By.ID, "status").get_attribute("class") == "error")
    status = driver.find_element(By.ID, "status").text
    check("a bad date range is reported, naming the field", status.startswith("since:"), status)
    driver.execute_script("document.getElementById('since').value='';"
                          "document.getElementById('until').value='';")

    # 5. Topics: the list, a click on one, a click on a chart bar.
    report = api("/topics")
    n = len(report["topics"])
    listed = lambda: driver.find_elements(By.CSS_SELECTOR, "#topics li.topic")
    wait_check("every topic is listed", lambda: len(listed()) == n,
               lambda: f"{len(listed())} listed, {n} in /topics")
    topic = report["topics"][1]
    driver.find_elements(By.CSS_SELECTOR, "#topics li.topic")[1].click()
    wait.until(lambda d: d.find_element(By.ID, "topic").get_attribute("data-topic") == str(topic["id"]))
    title = driver.find_element(By.CSS_SELECTOR, "#topic h3").text
    examples = driver.find_elements(By.CSS_SELECTOR, "#topic li.example")
    check("clicking a topic shows its name and example tweets",
          title == f"{topic['id']}. {topic['label']}" and len(examples) == len(topic["representatives"]),
          f"{title!r}, {len(examples)} examples")
    size = driver.find_element(By.CSS_SELECTOR, "#topic .size").text
    check("the topic shows its size", size.startswith(f"{topic['size']} tweets"), size)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#charts svg.chart")) == 4)
    bars = driver.find_elements(By.CSS_SELECTOR, "#chart-sizes .bar")
    check("the size chart has a bar per topic", len(bars) == n, f"{len(bars)} bars for {n} topics")
    last = report["topics"][-1]
    driver.execute_script("arguments[0].scrollIntoView()", bars[-1])
    driver.execute_script(
        "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", bars[-1])
    shown = lambda: driver.find_element(By.ID, "topic").get_attribute("data-topic")
    wait_check("clicking a chart bar shows that topic", lambda: shown() == str(last["id"]),
               lambda: f"shows topic {shown()}, clicked {last['id']}")
    points = driver.find_elements(By.CSS_SELECTOR, "#chart-map .pt")
    driver.execute_script(
        "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", points[0])
    panel = lambda: driver.find_element(By.ID, "tweet").text
    wait_check("clicking a point of the map shows its tweet", lambda: len(panel()) > 20,
               lambda: repr(panel()))
    boxes = driver.execute_script(
        "return [...document.querySelectorAll('#charts svg.chart')].map(s => s.getBBox().width > 0)")
    check("every chart is laid out", all(boxes) and len(boxes) == 4, boxes)

    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
              and "/similar?" not in e["message"]]  # the bad range's 400 is expected
    check("no script errors in the console", not severe, severe)
    # The screenshot: a plain search beside a topic.
    driver.find_element(By.CSS_SELECTOR, "#mode option[value=hybrid]").click()
    driver.find_element(By.ID, "no_replies").click()
    submit("tesla autopilot data engine")
    wait.until(lambda d: len(hits()) == 5 and "tesla autopilot" in d.find_element(By.ID, "status").text)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(shot)
    print(f"screenshot: {shot}")
except Exception as e:  # a wait that timed out, an element that is missing
    check("page interaction", False, f"{type(e).__name__}: {e}")
finally:
    driver.quit()

print(f"page: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
