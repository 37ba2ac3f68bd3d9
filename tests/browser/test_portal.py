"""The consumer portal in a real browser: Debian's Chromium driven by Playwright against
the real ``hookline serve --dev``. Playwright's assertions wait for what they expect, so no
test sleeps."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Hookline, screenshot
from tests.e2e.harness import Receiver, wait_until

MAX_PAGE_BYTES = 300_000
"""The issue's page weight budget for the portal: HTML, CSS and JavaScript transferred."""


def branded(link: str, **query: str) -> str:
    """The portal link with query parameters, placed before the fragment that holds the key."""
    base, _, fragment = link.partition("#")
    return f"{base}?{urlencode(query)}#{fragment}"


def token_of(link: str) -> str:
    return link.rsplit("#key=", 1)[1]


def test_the_link_opens_the_endpoints_screen_and_takes_the_key_out_of_the_address(
    page: Page, hookline: Hookline
) -> None:
    """The app-portal-access link shows the endpoints screen; the key leaves the address
    bar (history.replaceState) and lives in this tab's sessionStorage only."""
    app = hookline.application("browser-open")
    link = hookline.portal_link(app)
    page.goto(link)
    expect(page.get_by_role("heading", name="Endpoints")).to_be_visible()
    expect(page.get_by_text("No endpoints yet.")).to_be_visible()
    assert "key=" not in page.url
    stored = page.evaluate(f"sessionStorage.getItem('hookline.portal.{app}')")
    assert stored == token_of(link)
    screenshot(page, "portal-empty")


def test_an_endpoint_created_in_the_form_is_listed_and_stored(
    page: Page, hookline: Hookline
) -> None:
    """Add endpoint → a refused URL is explained beside its field → a good one is created,
    shown, listed, and the API returns it with the event type chosen."""
    app = hookline.application("browser-create")
    created = hookline.api.post(
        "/api/v1/event-type", json={"name": "order.shipped", "description": "An order left"}
    )
    assert created.status_code in (201, 409)
    page.goto(hookline.portal_link(app))
    page.get_by_role("button", name="Add endpoint").click()
    page.get_by_label("Endpoint URL").fill("not a url")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.locator("#url-error")).to_be_visible()
    expect(page.get_by_label("Endpoint URL")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "portal-endpoint-form-error")
    page.get_by_label("Endpoint URL").fill("https://example.com/webhooks/orders")
    page.get_by_label("Description").fill("Order updates")
    page.get_by_label("order.shipped").check()
    page.get_by_label("Rate limit (messages per second)").fill("20")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.get_by_text("Endpoint created.")).to_be_visible()
    screenshot(page, "portal-endpoint")
    page.get_by_role("link", name="← All endpoints").click()
    expect(page.get_by_role("link", name="https://example.com/webhooks/orders")).to_be_visible()
    screenshot(page, "portal-endpoints")
    (stored,) = hookline.api.get(f"/api/v1/app/{app}/endpoint").json()["data"]
    assert stored["url"] == "https://example.com/webhooks/orders"
    assert stored["filterTypes"] == ["order.shipped"] and stored["rateLimit"] == 20


def test_revealing_and_rotating_the_secret_shows_the_one_the_api_signs_with(
    page: Page, hookline: Hookline
) -> None:
    """Reveal shows the current secret; Rotate shows a new one, which the API then returns."""
    app = hookline.application("browser-rotate")
    made = hookline.api.post(f"/api/v1/app/{app}/endpoint", json={"url": "https://e.com/r"})
    key = made.json()["id"]
    secret_path = f"/api/v1/app/{app}/endpoint/{key}/secret"
    old = hookline.api.get(secret_path).json()["key"]
    page.goto(hookline.portal_link(app))
    page.get_by_role("link", name="https://e.com/r").click()
    page.get_by_role("button", name="Reveal secret").click()
    expect(page.get_by_label("Current signing secret")).to_have_value(old)
    page.get_by_label("Keep the old secret valid for (hours)").fill("2")
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_text("Secret rotated.")).to_be_visible()
    new = hookline.api.get(secret_path).json()["key"]
    assert new != old
    expect(page.get_by_label("Current signing secret")).to_have_value(new)


def test_a_read_only_token_shows_no_controls_and_the_server_refuses_its_changes(
    page: Page, hookline: Hookline
) -> None:
    """With ``readOnly`` the screens offer no create, edit, disable or secret control, and
    the portal's mutating routes called directly with the same token answer 403 and
    change nothing."""
    app = hookline.application("browser-readonly")
    made = hookline.api.post(f"/api/v1/app/{app}/endpoint", json={"url": "https://e.com/ro"})
    key = made.json()["id"]
    before = hookline.api.get(f"/api/v1/app/{app}/endpoint/{key}").json()
    secret = hookline.api.get(f"/api/v1/app/{app}/endpoint/{key}/secret").json()
    link = hookline.portal_link(app, readOnly=True)
    page.goto(link)
    expect(page.get_by_role("link", name="https://e.com/ro")).to_be_visible()
    expect(page.get_by_role("button", name="Add endpoint")).to_have_count(0)
    page.get_by_role("link", name="https://e.com/ro").click()
    expect(page.get_by_role("heading", name="https://e.com/ro")).to_be_visible()
    for control in ("Edit", "Disable", "Reveal secret", "Rotate secret"):
        expect(page.get_by_role("button", name=control)).to_have_count(0)
    screenshot(page, "portal-read-only")
    bearer = {"authorization": f"Bearer {token_of(link)}"}
    base = f"{hookline.url}/portal/{app}/endpoints"
    answers = [
        page.request.post(base, headers=bearer, form={"url": "https://e.com/new"}),
        page.request.post(f"{base}/{key}", headers=bearer, form={"url": "https://evil.example"}),
        page.request.post(f"{base}/{key}/disable", headers=bearer),
        page.request.post(f"{base}/{key}/secret/rotate", headers=bearer, form={"graceHours": "0"}),
        page.request.get(f"{base}/{key}/secret", headers=bearer),
    ]
    assert [a.status for a in answers] == [403] * len(answers)
    assert hookline.api.get(f"/api/v1/app/{app}/endpoint/{key}").json() == before
    assert hookline.api.get(f"/api/v1/app/{app}/endpoint/{key}/secret").json() == secret
    assert len(hookline.api.get(f"/api/v1/app/{app}/endpoint").json()["data"]) == 1


def test_branding_parameters_change_the_rendered_colours_and_font(
    page: Page, hookline: Hookline
) -> None:
    """``primaryColor`` paints the primary button, ``fontFamily`` sets the font, and
    ``darkMode=true`` starts dark; the dark-mode switch goes back to light."""
    app = hookline.application("browser-brand")
    page.goto(branded(hookline.portal_link(app), primaryColor="#ff5500", fontFamily="Courier"))
    add = page.get_by_role("button", name="Add endpoint")
    expect(add).to_have_css("background-color", "rgb(255, 85, 0)")
    expect(page.locator("body")).to_have_css("font-family", re.compile(r"^Courier"))
    expect(page.locator("body")).to_have_css("background-color", "rgb(255, 255, 255)")
    page.goto(branded(hookline.portal_link(app), darkMode="true", primaryColorDark="#33cc99"))
    expect(page.locator("body")).to_have_css("background-color", "rgb(13, 17, 23)")
    expect(page.get_by_role("button", name="Add endpoint")).to_have_css(
        "background-color", "rgb(51, 204, 153)"
    )
    switch = page.get_by_role("button", name="Dark mode")
    expect(switch).to_have_attribute("aria-pressed", "true")
    screenshot(page, "portal-dark")
    switch.click()
    expect(switch).to_have_attribute("aria-pressed", "false")
    expect(page.locator("body")).to_have_css("background-color", "rgb(255, 255, 255)")


def test_the_portal_renders_in_a_frame_of_an_allowed_origin_only(
    page: Page, hookline: Hookline
) -> None:
    """Framed by a page whose origin HOOKLINE_PORTAL_FRAME_ANCESTORS lists, the portal
    renders and works (its key kept in the frame's storage, no cookie); framed by any other
    origin, the browser refuses it on the CSP's ``frame-ancestors``."""
    app = hookline.application("browser-frame")
    hookline.api.post(f"/api/v1/app/{app}/endpoint", json={"url": "https://e.com/framed"})
    page.goto(hookline.allowed_host.url_framing(hookline.portal_link(app)))
    portal = page.frame_locator("iframe[title='Webhook portal']")
    expect(portal.get_by_role("link", name="https://e.com/framed")).to_be_visible()
    screenshot(page, "portal-embedded")
    with page.expect_console_message(lambda m: "frame-ancestors" in m.text) as refused:
        page.goto(hookline.other_host.url_framing(hookline.portal_link(app)))
    assert "frame-ancestors" in refused.value.text
    expect(page.get_by_role("heading", name="Host dashboard")).to_be_visible()
    blocked = page.frame_locator("iframe[title='Webhook portal']")
    expect(blocked.get_by_role("heading", name="Endpoints")).to_have_count(0)


CALL_WITH_TOKEN = """async ([url, token]) => {
    try {
        const answer = await fetch(url, {headers: {authorization: `Bearer ${token}`}});
        return {status: answer.status, body: await answer.json()};
    } catch (refused) {
        return {refused: String(refused)};
    }
}"""


def test_a_page_of_an_allowed_origin_calls_the_api_with_a_portal_token(
    page: Page, hookline: Hookline
) -> None:
    """What svix-react does: a page of an origin ``HOOKLINE_CORS_ORIGINS`` lists fetches the
    API with the portal link's token and reads the answer; the same call from any other
    origin is refused by the browser, for want of CORS headers."""
    app = hookline.application("browser-cors")
    hookline.api.post(f"/api/v1/app/{app}/endpoint", json={"url": "https://e.com/cors"})
    token = hookline.portal_link(app).partition("#key=")[2]
    url = f"{hookline.url}/api/v1/app/{app}/endpoint"
    page.goto(hookline.allowed_host.url_framing("about:blank"))
    allowed = page.evaluate(CALL_WITH_TOKEN, [url, token])
    assert allowed["status"] == 200, allowed
    assert [e["url"] for e in allowed["body"]["data"]] == ["https://e.com/cors"]
    page.goto(hookline.other_host.url_framing("about:blank"))
    refused = page.evaluate(CALL_WITH_TOKEN, [url, token])
    assert "Failed to fetch" in refused.get("refused", ""), refused


def test_the_keyboard_reaches_the_content_through_the_skip_link(
    page: Page, hookline: Hookline
) -> None:
    """The first Tab lands on a visible "Skip to content" link, which moves focus to the
    main region; every control after it is reachable with Tab."""
    app = hookline.application("browser-keyboard")
    page.goto(hookline.portal_link(app))
    expect(page.get_by_role("heading", name="Endpoints")).to_be_visible()
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("#portal-main")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Add endpoint")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Add endpoint")).to_be_focused()


def test_the_portal_weighs_under_300_kb(page: Page, hookline: Hookline) -> None:
    """HTML, CSS and JavaScript of the first screen, as transferred, stay under the budget."""
    app = hookline.application("browser-weight")
    sizes: dict[str, int] = {}
    page.on("response", lambda r: sizes.__setitem__(r.url, len(r.body())))
    page.goto(hookline.portal_link(app))
    expect(page.get_by_role("heading", name="Endpoints")).to_be_visible()
    total = sum(sizes.values())
    print(f"portal page weight: {total} bytes: {sizes}")
    assert total < MAX_PAGE_BYTES, sizes


def test_the_message_log_shows_what_was_published(page: Page, hookline: Hookline) -> None:
    """Messages published through the API appear in the portal's message log, filterable
    by event type from the navigation's Messages screen."""
    app = hookline.application("browser-messages")
    for name in ("invoice.paid", "invoice.voided"):
        hookline.api.post("/api/v1/event-type", json={"name": name, "description": name})
    for index, name in enumerate(("invoice.paid", "invoice.voided", "invoice.paid")):
        r = hookline.api.post(
            f"/api/v1/app/{app}/msg",
            json={"eventType": name, "eventId": f"evt-{index}", "payload": {"n": index}},
        )
        assert r.status_code == 202, r.text
    page.goto(hookline.portal_link(app))
    page.get_by_role("navigation", name="Portal").get_by_role("link", name="Messages").click()
    expect(page.get_by_role("heading", name="Messages")).to_be_focused()
    expect(page.get_by_role("row")).to_have_count(4)
    screenshot(page, "portal-messages")
    page.get_by_label("Event type").select_option("invoice.voided")
    expect(page.get_by_role("row")).to_have_count(2)
    expect(page.get_by_text("evt-1")).to_be_visible()


def test_signing_out_ends_the_link_and_forgets_the_key(page: Page, hookline: Hookline) -> None:
    """Sign out revokes the token; the tab drops its copy, and reloading the portal says
    the access has ended instead of showing data."""
    app = hookline.application("browser-sign-out")
    page.goto(hookline.portal_link(app))
    expect(page.get_by_role("heading", name="Endpoints")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
    assert page.evaluate(f"sessionStorage.getItem('hookline.portal.{app}')") is None
    page.reload()
    expect(page.get_by_role("heading", name="Your access has ended")).to_be_visible()


def test_a_delivered_message_shows_its_payload_and_attempt(
    page: Page, hookline: Hookline, receiver: Receiver
) -> None:
    """After a real delivery, the message's screen (from the log) shows its payload, the
    attempt's status code, and the endpoint's delivery as succeeded."""
    app = hookline.application("browser-message")
    hookline.api.post(f"/api/v1/app/{app}/endpoint", json={"url": receiver.url + "/hook"})
    sent = hookline.api.post(
        f"/api/v1/app/{app}/msg",
        json={"eventType": "parcel.delivered", "payload": {"parcel": "PX-1"}},
    )
    msg_id = sent.json()["id"]
    attempts = f"/api/v1/app/{app}/attempt/msg/{msg_id}"
    wait_until(lambda: bool(hookline.api.get(attempts).json()["data"]), 10, "the attempt's record")
    page.goto(hookline.portal_link(app))
    page.get_by_role("navigation", name="Portal").get_by_role("link", name="Messages").click()
    page.get_by_role("link", name=msg_id).click()
    expect(page.get_by_role("heading", name="parcel.delivered")).to_be_visible()
    expect(page.get_by_text('"parcel": "PX-1"')).to_be_visible()
    expect(page.get_by_role("cell", name="200")).to_be_visible()
    expect(page.get_by_text("Succeeded")).to_be_visible()
    screenshot(page, "portal-message")


UNLABELLED = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter((field) => field.type !== 'hidden')
  .filter((field) => field.labels.length === 0 && !field.getAttribute('aria-label'))
  .map((field) => field.name || field.id)"""


def test_every_field_of_the_endpoint_form_and_the_filters_has_a_label(
    page: Page, hookline: Hookline
) -> None:
    """Screen readers name every control: each input, select and textarea has a label."""
    app = hookline.application("browser-labels")
    page.goto(hookline.portal_link(app))
    expect(page.get_by_role("heading", name="Endpoints")).to_be_visible()
    assert page.evaluate(UNLABELLED) == []
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_role("heading", name="Add endpoint")).to_be_visible()
    assert page.evaluate(UNLABELLED) == []


def test_on_a_phone_the_screens_fit_without_sideways_scrolling(
    browser: Browser, hookline: Hookline
) -> None:
    """At 375 px wide the endpoints table folds into cards: nothing scrolls sideways."""
    app = hookline.application("browser-phone")
    hookline.api.post(
        f"/api/v1/app/{app}/endpoint",
        json={"url": "https://example.com/a/rather/long/path/for/a/webhook/receiver"},
    )
    context = browser.new_context(viewport={"width": 375, "height": 740})
    try:
        page = context.new_page()
        page.goto(hookline.portal_link(app))
        expect(page.get_by_role("link", name=re.compile("rather.long"))).to_be_visible()
        wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0
        screenshot(page, "portal-phone")
    finally:
        context.close()


def test_recover_counts_first_then_sends_the_failed_messages_again(
    page: Page, hookline: Hookline, receiver: Receiver
) -> None:
    """A message that failed for good (no retries, the receiver answering 503) is sent
    again from the endpoint's *Send again* panel: the count comes first, and once
    confirmed the receiver gets the message a second time and the panel says it finished."""
    app = hookline.application("browser-recover")
    answers = iter([503])
    receiver.status_for["/recover"] = lambda _: next(answers, 200)
    made = hookline.api.post(
        f"/api/v1/app/{app}/endpoint",
        json={"url": receiver.url + "/recover", "policy": {"retry": {"schedule": []}}},
    )
    assert made.status_code == 201, made.text
    sent = hookline.api.post(
        f"/api/v1/app/{app}/msg", json={"eventType": "order.paid", "payload": {"order": 7}}
    )
    assert sent.status_code == 202, sent.text
    wait_until(lambda: receiver.received("/recover") != [], 10, "the failing attempt")
    wait_until(
        lambda: (
            hookline.api.get(f"/api/v1/app/{app}/attempt/msg/{sent.json()['id']}").json()["data"]
            != []
        ),
        10,
        "the failure's record",
    )
    page.goto(hookline.portal_link(app))
    page.get_by_role("link", name=receiver.url + "/recover").click()
    page.get_by_label("Messages", exact=True).select_option("recover")
    page.get_by_label("Since").select_option("1h")
    page.get_by_role("button", name="Count").click()
    expect(page.get_by_text("1 message since")).to_be_visible()
    screenshot(page, "portal-recover")
    page.get_by_role("button", name="Send 1 again").click()
    expect(page.get_by_text("1 sent again")).to_be_visible()
    wait_until(lambda: len(receiver.received("/recover")) == 2, 10, "the message sent again")
