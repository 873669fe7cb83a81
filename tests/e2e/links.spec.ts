// A server that goes silent: both sides notice within the heartbeat bound, say so, keep
// what was typed and send it exactly once when the server answers again. Its Parlor has
// a short heartbeat, and the test embeds the widget on a page of another origin, where
// the browser gives the panel no lasting storage: the reconnect must still resume the
// same chat.
import { test as base, expect, startHostSite } from "./fixtures";
import { signIn, startChat, acceptScreenPop } from "./helpers";

/** A shop's page on another origin with the widget's tag. */
const test = base.extend<{ shop: string }>({
  shop: async ({ parlor }, use) => {
    const tag = `<script async src="${parlor.url}/widget.js"></script>`;
    const host = await startHostSite({ "/": { html: `<!doctype html><title>Shop</title><h1>Shop</h1>${tag}` } });
    await use(`http://localhost:${host.port}/`);
    await host.close();
  },
});

test.use({ parlorEnv: { PARLOR_HEARTBEAT_SECS: "2" } });

test("a silent server shows reconnecting on both sides and a message typed meanwhile arrives once", async ({ browser, parlor, shop }) => {
  const agentContext = await browser.newContext();
  const customerContext = await browser.newContext();
  const agent = await agentContext.newPage();
  const customer = await customerContext.newPage();

  await signIn(agent);
  await customer.goto(shop);
  await customer.getByRole("button", { name: "Open chat" }).click();
  const widget = customer.frameLocator('iframe[title="Chat with us"]');
  await startChat(widget, "Ada Lovelace", "Silent server", "Are you there?");
  await acceptScreenPop(agent, "Ada Lovelace", "Silent server");
  const caseView = agent.getByRole("tabpanel");
  await expect(widget.locator(".chat-status")).toContainText("You are chatting with Admin");

  // The server freezes: no answers, no close. The link still looks open for a moment,
  // so the customer can type into it.
  parlor.process.kill("SIGSTOP");
  const input = widget.getByRole("textbox", { name: "Message", exact: true });
  await input.fill("Typed while the server was frozen.");
  await input.press("Enter");
  await expect(widget.locator(".msg-pending")).toHaveCount(1);

  // Heartbeat 2 s: each side gives up on the link within 1.5 intervals and says so.
  await expect(widget.locator(".link-banner")).toHaveText("Reconnecting…", { timeout: 8_000 });
  await expect(agent.locator(".link-state")).not.toHaveText("Connected", { timeout: 8_000 });

  parlor.process.kill("SIGCONT");
  await expect(widget.locator(".link-banner")).toBeHidden({ timeout: 20_000 });
  await expect(agent.locator(".link-state")).toHaveText("Connected", { timeout: 20_000 });
  await expect(widget.locator(".msg-pending")).toHaveCount(0);
  await expect(caseView.locator(".msg-customer", { hasText: "Typed while the server was frozen." })).toHaveCount(1);
  await expect(widget.locator(".msg-mine", { hasText: "Typed while the server was frozen." })).toHaveCount(1);

  // The agent can still answer: the chat survived.
  const reply = caseView.getByRole("textbox", { name: "Message", exact: true });
  await reply.fill("Still here.");
  await reply.press("Enter");
  await expect(widget.locator(".msg-agent", { hasText: "Still here." })).toHaveCount(1);

  await agentContext.close();
  await customerContext.close();
});
