"""The playground in a real browser (Debian's chromium driven by Playwright) against the real
engine, bot and emulator: a user types /emoji, sees the image, rerolls; a moderator approves a
held output and follows the jump link; Discord markup is rendered (and cannot inject HTML); the
language switch reaches the interaction; no console errors on the way.

Set AIGC_PLAYGROUND_SCREENSHOT=PATH to also save the final page (docs/playground.png)."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import playwright.async_api as playwright_api

from tests.e2e.test_moderation import mod

CHROMIUM = os.environ.get("AIGC_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# scripts/install.sh installs the browser; a missing one is a set-up error, never a skip.
if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
    raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (or set AIGC_CHROMIUM)")

MARKUP = ("**bold** *italic* __under__ ~~gone~~ `x<y` ||secret|| <@{alice}> <@&{role}> <#{review}> "
          "<t:1700000000:D> <t:{soon}:R> [docs](https://example.com/docs) \\*not italic\\* "
          "<img src=x onerror=\"window.xss=1\"><script>window.xss=2</script> [click](javascript:window.xss=3)\n"
          "> quoted **line**\n```py\nprint('<b>hi</b>')\n```")


async def wait_js(page, expr: str, arg=None, timeout: float = 30_000):
    return await page.wait_for_function(expr, arg=arg, timeout=timeout)


async def send_command(page, command: str, prompt: str) -> None:
    """Type a slash command as a user does: "/emoji", Enter picks it from the menu, type the
    prompt and press Enter at once (before the prompt's autocomplete lookup has run)."""
    box = page.locator("#command-input")
    await box.click()
    await page.keyboard.type(command)
    await page.locator("#command-menu .item.sel").wait_for()
    await page.keyboard.press("Enter")
    prompt_input = page.locator('#options [data-name="prompt"]')
    await prompt_input.wait_for()
    await page.keyboard.type(prompt)  # the prompt field has focus
    await page.keyboard.press("Enter")
    await wait_js(page, "() => document.getElementById('command-input').value === ''")


async def result_images(page) -> int:
    """Loaded images in public result messages (those with a Reroll button)."""
    return await page.evaluate("""() => [...document.querySelectorAll('#messages .msg')]
        .filter((m) => m.querySelector('button[data-custom-id^="aigc:reroll:"]'))
        .flatMap((m) => [...m.querySelectorAll('img')])
        .filter((i) => i.complete && i.naturalWidth > 0).length""")


async def test_playground_in_a_browser(world, tmp_path):
    started = time.monotonic()
    emu = world.emu
    guild = emu.world.guilds[world.guild]
    review = guild.channel_ids[1]
    role = emu.create_role(world.guild, "artists", 0)
    for i in range(12):  # enough history that the channel scrolls
        emu.post_as_user(world.channel, world.alice if i % 2 else world.mod, f"earlier message {i}")
    emu.post_as_user(world.channel, world.mod, MARKUP.format(alice=world.alice, role=role.id, review=review,
                                                               soon=int(time.time()) + 300))
    errors: list[str] = []
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 860})
            page.set_default_timeout(30_000)
            page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            await page.goto(emu.playground_url)
            await page.locator("#status.ok").wait_for()
            assert (await page.request.get(emu.base_url + "/favicon.ico")).status == 200

            # -- Discord markup, rendered and inert ------------------------------------------
            msg = page.locator("#messages .msg", has_text="quoted").last
            await msg.wait_for()
            content = msg.locator(".content")
            assert await content.locator("strong").first.inner_text() == "bold"
            assert await content.locator("em").first.inner_text() == "italic"
            assert await content.locator("u").inner_text() == "under"
            assert await content.locator("s").inner_text() == "gone"
            assert await content.locator("code").first.inner_text() == "x<y"
            assert await content.locator(".spoiler").inner_text() == "secret"
            mentions = await content.locator(".mention").all_inner_texts()
            assert mentions == ["@alice", "@artists", "#review"]
            stamps = await content.locator(".timestamp").all_inner_texts()
            assert "2023" in stamps[0] and stamps[1] == "in 5 minutes"
            assert await content.locator("a", has_text="docs").get_attribute("href") == "https://example.com/docs"
            assert await content.locator("blockquote strong").inner_text() == "line"
            assert await content.locator("pre code").inner_text() == "print('<b>hi</b>')"
            text = await content.inner_text()
            assert "*not italic*" in text and "<img src=x" in text and "<script>" in text
            assert "**" not in text.replace("*not italic*", "") and "<@" not in text and "<t:" not in text
            assert await page.locator("#messages img[src='x'], #messages script, #messages a[href^='javascript']").count() == 0
            assert await page.evaluate("() => window.xss") is None

            # -- language: the member's locale goes with their interactions -------------------
            await page.select_option("#user", label="alice")
            await page.select_option("#locale", "zh-CN")
            await emu.wait_for(lambda: emu.world.user(world.alice).locale == "zh-CN")
            await page.locator("#command-input").click()
            await page.keyboard.type("/emo")
            await page.locator("#command-menu .item", has_text="根据文字提示画一个表情符号").wait_for()
            await page.locator("#command-input").fill("")
            await page.select_option("#locale", "en-US")
            await emu.wait_for(lambda: emu.world.user(world.alice).locale == "en-US")
            await page.select_option("#locale", "zh-CN")
            await emu.wait_for(lambda: emu.world.user(world.alice).locale == "zh-CN")

            # -- /emoji as a user types it, the image, scrolled fully into view --------------
            await send_command(page, "/emoji", "cat face")
            rec = list(emu.interactions.by_id.values())[-1]
            assert rec.payload["data"]["name"] == "emoji" and rec.payload["locale"] == "zh-CN"
            await wait_js(page, """() => [...document.querySelectorAll('#messages .msg')].some((m) =>
                m.querySelector('button[data-custom-id^="aigc:reroll:"]') &&
                [...m.querySelectorAll('img')].some((i) => i.complete && i.naturalWidth > 0))""")
            await page.wait_for_timeout(400)  # past the prompt's 250 ms autocomplete debounce
            assert await page.locator("#composer-error").is_hidden(), await page.locator("#composer-error").inner_text()
            gap = await page.evaluate("""() => { const b = document.getElementById('messages');
                return b.scrollHeight - b.scrollTop - b.clientHeight; }""")
            assert gap <= 2, f"the new result is not scrolled fully into view ({gap}px below)"
            await page.select_option("#locale", "en-US")

            # -- Reroll ---------------------------------------------------------------------
            before = await result_images(page)
            await page.locator('button[data-custom-id^="aigc:reroll:"]').last.click()
            await wait_js(page, f"""() => [...document.querySelectorAll('#messages .msg')]
                .filter((m) => m.querySelector('button[data-custom-id^="aigc:reroll:"]'))
                .flatMap((m) => [...m.querySelectorAll('img')])
                .filter((i) => i.complete && i.naturalWidth > 0).length > {before}""")

            # -- review queue on: a moderator approves a held output -------------------------
            assert "held for review" in await mod(world, "mod review on", {"channel": review})
            await send_command(page, "/emoji", "red heart")
            await page.locator("#messages .msg", has_text="awaiting review").wait_for()
            await page.select_option("#user", label="mod")
            await page.locator("#channel-list li", has_text="review").click()
            await page.locator('button[data-custom-id^="aigc-review:approve:"]').last.click()
            approved = page.locator("#messages .msg", has_text="Approved by").last
            await approved.wait_for()
            # The "published" jump link scrolls to the message here instead of leaving for discord.com.
            jump = approved.locator("a.jump").first
            href = await jump.get_attribute("href")
            assert href.startswith(f"https://discord.com/channels/{world.guild}/{world.channel}/")
            url = page.url
            await jump.click()
            published_id = href.rsplit("/", 1)[1]
            await page.locator(f'#messages .msg.highlight[data-message-id="{published_id}"]').wait_for()
            assert page.url == url and len(browser.contexts[0].pages) == 1
            assert await page.locator("#channel-title").inner_text() == "# general"
            assert await page.locator(f'#messages .msg[data-message-id="{published_id}"]').is_visible()

            shot = os.environ.get("AIGC_PLAYGROUND_SCREENSHOT") or str(tmp_path / "playground.png")
            await page.wait_for_timeout(300)
            await page.screenshot(path=shot)
        finally:
            await browser.close()
    assert errors == [], errors
    assert time.monotonic() - started < 90
