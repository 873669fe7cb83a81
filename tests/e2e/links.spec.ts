// A server that goes silent: both sides notice within the heartbeat bound, say so, keep
// what was typed and send it exactly once when the server answers again. This test runs
// its own Parlor (short heartbeat) so that stopping it cannot disturb the other tests,
// and embeds the widget on a page of another origin, where the browser gives the panel
// no lasting storage: the reconnect must still resume the same chat.
import { test, expect } from "@playwright/test";
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { adminPassword } from "../playwright.config";
import { signIn, startChat, acceptScreenPop } from "./helpers";

const port = Number(process.env.PARLOR_TEST_PORT ?? 8181) + 2;
const base = `http://127.0.0.1:${port}`;
let server: ChildProcess;
const site = `http://localhost:${port + 10}`;
let host: Server;

test.beforeAll(async () => {
  host = createServer((_, response) => {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(`<!doctype html><title>Shop</title><h1>Shop</h1><script async src="${base}/widget.js"></script>`);
  });
  await new Promise<void>((resolve) => host.listen(port + 10, resolve));
  server = spawn(process.env.PARLOR_BIN ?? "target/debug/parlor", [], {
    cwd: "..",
    stdio: "ignore",
    env: {
      ...process.env,
      PARLOR_ADDR: `127.0.0.1:${port}`,
      PARLOR_DATA_DIR: mkdtempSync(join(tmpdir(), "parlor-e2e-links-")),
      PARLOR_ADMIN_PASSWORD: adminPassword,
      PARLOR_WEB_DIR: "dist",
      PARLOR_HEARTBEAT_SECS: "2",
    },
  });
  for (let i = 0; i < 300; i++) {
    const up = await fetch(`${base}/healthz`).then((r) => r.ok, () => false);
    if (up) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("the second Parlor did not start");
});

test.afterAll(() => {
  server?.kill("SIGCONT");
  server?.kill("SIGTERM");
  host?.close();
});

test("a silent server shows reconnecting on both sides and a message typed meanwhile arrives once", async ({ browser }) => {
  const agentContext = await browser.newContext({ baseURL: base });
  const customerContext = await browser.newContext({ baseURL: base });
  const agent = await agentContext.newPage();
  const customer = await customerContext.newPage();

  await signIn(agent);
  await customer.goto(site);
  await customer.getByRole("button", { name: "Open chat" }).click();
  const widget = customer.frameLocator('iframe[title="Chat with us"]');
  await startChat(widget, "Ada Lovelace", "Silent server", "Are you there?");
  await acceptScreenPop(agent, "Ada Lovelace", "Silent server");
  const caseView = agent.getByRole("tabpanel");
  await expect(widget.locator(".chat-status")).toContainText("You are chatting with Admin");

  // The server freezes: no answers, no close. The link still looks open for a moment,
  // so the customer can type into it.
  server.kill("SIGSTOP");
  const input = widget.getByRole("textbox", { name: "Message", exact: true });
  await input.fill("Typed while the server was frozen.");
  await input.press("Enter");
  await expect(widget.locator(".msg-pending")).toHaveCount(1);

  // Heartbeat 2 s: each side gives up on the link within 1.5 intervals and says so.
  await expect(widget.locator(".link-banner")).toHaveText("Reconnecting…", { timeout: 8_000 });
  await expect(agent.locator(".link-state")).not.toHaveText("Connected", { timeout: 8_000 });

  server.kill("SIGCONT");
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
