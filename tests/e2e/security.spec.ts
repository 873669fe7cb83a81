// What an attacker tries first from a browser: planting a visitor token of theirs in
// the widget's URL, so that they could later read the chat their victim starts.
import type { Page } from "@playwright/test";
import { test, expect } from "./fixtures";
import { signIn } from "./helpers";

/** Says hello on a raw widget socket from `page` and returns the welcome frame. */
async function hello(page: Page, token: string | null) {
  return page.evaluate(async (token) => {
    const url = location.origin.replace(/^http/, "ws") + "/ws/visitor";
    const ws = new WebSocket(url);
    await new Promise((resolve) => (ws.onopen = resolve));
    const welcome = new Promise<any>((resolve) => (ws.onmessage = (event) => resolve(JSON.parse(event.data))));
    ws.send(JSON.stringify({ hello: { token, since: 0 } }));
    const frame = await welcome;
    ws.close();
    return frame.welcome;
  }, token);
}

test("a visitor token planted in the widget's URL is never used", async ({ browser }) => {
  // An agent is on, so the widget offers a chat.
  const agent = await (await browser.newContext()).newPage();
  await signIn(agent);
  // The attacker gets a token of their own from Parlor.
  const attacker = await (await browser.newContext()).newPage();
  await attacker.goto("/demo");
  const planted: string = (await hello(attacker, null)).token;
  expect(planted).toMatch(/^[0-9a-f]{48}$/);

  // The victim follows the attacker's link to the widget page and starts a chat.
  const victim = await (await browser.newContext()).newPage();
  await victim.goto(`/widget/#token=${planted}`);
  await victim.getByLabel("Name").fill("Victim");
  await victim.getByLabel("Subject").fill("My account");
  await victim.getByRole("textbox", { name: "Message", exact: true }).fill("My password is hunter2");
  await victim.getByRole("button", { name: "Start chat" }).click();
  await expect(victim.locator(".chat-status")).toContainText("in the queue");

  // The planted token opens nothing.
  const welcome = await hello(attacker, planted);
  expect(welcome.chat).toBeNull();
  await attacker.context().close();
  await victim.context().close();
  await agent.context().close();
});
