// The widget on somebody else's website: a host page served from another origin than
// Parlor (its own little server here), with rude CSS, the JS API, a strict CSP, and the
// admin's settings (required fields, allowed sites) applied to it.
import type { Page, FrameLocator, APIRequestContext } from "@playwright/test";
import { test as base, expect, startHostSite, type HostPage } from "./fixtures";
import { signIn, signInApi, acceptScreenPop, endChatAsCustomer } from "./helpers";

const rude = `<style>
  * { box-sizing: content-box !important; font-family: "Comic Sans MS", cursive !important; }
  button { background: hotpink !important; font-size: 30px !important; border: 5px dashed lime !important; }
  iframe { opacity: .2 !important; }
  div { all: unset; }
</style>`;

function page(body: string, head = ""): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Northwind</title>${head}</head>` +
    `<body><h1>Northwind Outfitters</h1><button type="button">A host page button</button>${body}</body></html>`;
}

// The page's own script for the API test, as a file: the strict-CSP page allows no inline script.
const apiScript = `
  window.events = [];
  window.Parlor = window.Parlor || function () { (Parlor.q = Parlor.q || []).push(arguments) };
  Parlor("identify", { name: "Grace Hopper", email: "grace@example.com" });
  ["open", "close", "chat-started", "message", "chat-ended"].forEach(function (name) {
    Parlor("on", name, function (detail) { window.events.push({ name: name, detail: detail || null }); });
  });`;

/** The host site's pages, with the tag of the given Parlor. */
function pages(parlor: string): Record<string, HostPage> {
  const tag = `<script async src="${parlor}/widget.js"></script>`;
  return {
    "/plain": { html: page(tag, rude) },
    // The API calls run before the loader: they must be queued.
    "/api": { html: page(`<script src="/api.js"></script>${tag}`) },
    "/api.js": { html: apiScript, type: "text/javascript" },
    "/no-prefetch": { html: page(`<script async src="${parlor}/widget.js" data-parlor-prefetch="off"></script>`) },
    "/strict": {
      html: page(`<script src="/api.js"></script>${tag}`),
      csp: `default-src 'none'; script-src 'self' ${parlor}; frame-src ${parlor}; style-src 'self'`,
    },
  };
}

/** The host site: its origin (another host name and port than Parlor's) and its port. */
const test = base.extend<{ site: string; sitePort: number }>({
  sitePort: async ({ parlor }, use) => {
    const host = await startHostSite(pages(parlor.url));
    await use(host.port);
    await host.close();
  },
  site: async ({ sitePort }, use) => {
    await use(`http://localhost:${sitePort}`);
  },
});

async function putWidget(request: APIRequestContext, settings: Record<string, unknown>) {
  await signInApi(request);
  const current = await (await request.get("/api/settings/widget")).json();
  const saved = await request.put("/api/settings/widget", { data: { ...current, ...settings } });
  expect(saved.ok(), await saved.text()).toBeTruthy();
}

function launcher(host: Page) {
  return host.getByRole("button", { name: "Open chat" });
}

async function openOn(host: Page, url: string): Promise<FrameLocator> {
  await host.goto(url);
  await launcher(host).click();
  const widget = host.frameLocator('iframe[title="Chat with us"]');
  await expect(widget.getByRole("button", { name: "Start chat" })).toBeVisible();
  return widget;
}

test("the tag alone on another site gives a working chat the host's CSS cannot touch", async ({ browser, site }) => {
  const agent = await (await browser.newContext()).newPage();
  const customer = await (await browser.newContext()).newPage();
  await signIn(agent);

  await customer.goto(site + "/plain");
  const button = launcher(customer);
  await expect(button).toBeVisible();
  const look = await button.evaluate((b) => {
    const style = getComputedStyle(b);
    return { background: style.backgroundColor, width: style.width, border: style.borderStyle };
  });
  expect(look).toEqual({ background: "rgb(36, 86, 211)", width: "56px", border: "none" });

  await button.click();
  const widget = customer.frameLocator('iframe[title="Chat with us"]');
  const start = widget.getByRole("button", { name: "Start chat" });
  await expect(start).toBeVisible();
  const inside = await start.evaluate((b) => getComputedStyle(b).fontSize);
  expect(inside).not.toBe("30px");

  await widget.getByLabel("Name").fill("Ada Lovelace");
  await widget.getByLabel("Subject").fill("From another site");
  await widget.getByRole("textbox", { name: "Message", exact: true }).fill("Hello from Northwind.");
  await start.click();
  await acceptScreenPop(agent, "Ada Lovelace", "From another site");
  const caseView = agent.getByRole("tabpanel");
  await expect(caseView.locator(".msg-customer")).toContainText("Hello from Northwind.");
  const reply = caseView.getByRole("textbox", { name: "Message", exact: true });
  await reply.fill("Welcome, Ada.");
  await reply.press("Enter");
  await expect(widget.locator(".msg-agent")).toContainText("Welcome, Ada.");

  // A reload mid-chat: the panel opens again by itself and the transcript is whole,
  // nothing missing and nothing twice.
  const input = widget.getByRole("textbox", { name: "Message", exact: true });
  await input.fill("One more thing.");
  await input.press("Enter");
  await expect(caseView.locator(".msg-customer").last()).toContainText("One more thing.");
  await customer.reload();
  const again = customer.frameLocator('iframe[title="Chat with us"]');
  await expect(again.locator(".chat-status")).toContainText("You are chatting with Admin");
  await expect(again.locator(".msg-mine")).toHaveText([/Hello from Northwind\./, /One more thing\./]);
  await expect(again.locator(".msg-agent")).toHaveCount(1);
  await expect(customer.getByRole("button", { name: "Close chat" })).toHaveAttribute("aria-expanded", "true");

  await caseView.getByRole("button", { name: "End chat" }).click();
  await expect(again.locator(".chat-status")).toContainText("Admin ended the chat.");
  await agent.context().close();
  await customer.context().close();
});

test("API calls made before the loader ran work, and the page hears the chat's events", async ({ browser, site }) => {
  const agent = await (await browser.newContext()).newPage();
  const customer = await (await browser.newContext()).newPage();
  await signIn(agent);

  const widget = await openOn(customer, site + "/api");
  // identify told us the name and email: the form does not ask again.
  await expect(widget.getByLabel("Name")).toHaveCount(0);
  await expect(widget.getByLabel("Email (optional)")).toHaveCount(0);
  await widget.getByLabel("Subject").fill("Identified");
  await widget.getByRole("textbox", { name: "Message", exact: true }).fill("Hi, it is Grace.");
  await widget.getByRole("button", { name: "Start chat" }).click();
  await acceptScreenPop(agent, "Grace Hopper", "Identified");
  const caseView = agent.getByRole("tabpanel");
  await expect(caseView.locator(".case-answers")).toContainText("grace@example.com");

  const reply = caseView.getByRole("textbox", { name: "Message", exact: true });
  await reply.fill("Hello Grace.");
  await reply.press("Enter");
  await expect(widget.locator(".msg-agent")).toContainText("Hello Grace.");
  await caseView.getByRole("button", { name: "End chat" }).click();

  const names = () => customer.evaluate(() => (window as any).events.map((e: any) => e.name));
  await expect.poll(names).toContain("chat-ended");
  const events = await customer.evaluate(() => (window as any).events);
  expect(events[0].name).toBe("open");
  expect(events.map((e: any) => e.name)).toContain("chat-started");
  const agentSaid = events.find((e: any) => e.name === "message" && e.detail.author === "agent" && e.detail.body === "Hello Grace.");
  expect(agentSaid?.detail.name).toBe("Admin");
  expect(events.find((e: any) => e.name === "chat-ended").detail.endedBy).toBe("agent");

  // Commands from the page: close and open.
  await customer.evaluate(() => (window as any).Parlor("close"));
  await expect(customer.getByRole("button", { name: "Open chat" })).toHaveAttribute("aria-expanded", "false");
  expect(await names()).toContain("close");
  await agent.context().close();
  await customer.context().close();
});

test("what the visitor typed stays in its field when the page identifies them meanwhile", async ({ browser, site }) => {
  // An agent is signed in, so the form stays the pre-chat form (not the message form).
  const agent = await (await browser.newContext()).newPage();
  await signIn(agent);
  const customer = await (await browser.newContext()).newPage();
  const widget = await openOn(customer, site + "/plain");
  await widget.getByLabel("Name").fill("Typed name");
  await widget.getByLabel("Subject").fill("Typed subject");
  await customer.evaluate(() => (window as any).Parlor("identify", { name: "Grace Hopper" }));
  await expect(widget.getByLabel("Name")).toHaveCount(0);
  await expect(widget.getByLabel("Subject")).toHaveValue("Typed subject");
  await expect(widget.getByLabel("Email (optional)")).toHaveValue("");
  await agent.context().close();
  await customer.context().close();
});

test("Parlor('shutdown') forgets the visitor: the next page starts afresh, even where the frame has storage", async ({ browser, sitePort }) => {
  const agent = await (await browser.newContext()).newPage();
  await signIn(agent);
  const customer = await (await browser.newContext()).newPage();
  // The same site as Parlor (another port), so the browser gives the widget's frame
  // storage of its own: the visitor must not come back from there either.
  await customer.goto(`http://127.0.0.1:${sitePort}/plain`);
  await launcher(customer).click();
  const widget = customer.frameLocator('iframe[title="Chat with us"]');
  await widget.getByLabel("Name").fill("Leaving Soon");
  await widget.getByLabel("Subject").fill("Before sign-out");
  await widget.getByRole("textbox", { name: "Message", exact: true }).fill("Hello, then goodbye.");
  await widget.getByRole("button", { name: "Start chat" }).click();
  await acceptScreenPop(agent, "Leaving Soon", "Before sign-out");
  await expect(widget.locator(".chat-status")).toContainText("You are chatting with Admin");

  await customer.evaluate(() => (window as any).Parlor("shutdown"));
  await expect(launcher(customer)).toHaveCount(0);
  await customer.reload();
  await launcher(customer).click();
  const fresh = customer.frameLocator('iframe[title="Chat with us"]');
  await expect(fresh.getByRole("button", { name: "Start chat" })).toBeVisible();
  await expect(fresh.locator(".msg")).toHaveCount(0);

  await agent.getByRole("tabpanel").getByRole("button", { name: "End chat" }).click();
  await agent.context().close();
  await customer.context().close();
});

test("a host page with a strict Content-Security-Policy works", async ({ browser, site }) => {
  const agent = await (await browser.newContext()).newPage();
  await signIn(agent);
  const customer = await (await browser.newContext()).newPage();
  const violations: string[] = [];
  customer.on("console", (message) => {
    if (/Content Security Policy|Content-Security-Policy/i.test(message.text())) violations.push(message.text());
  });
  const widget = await openOn(customer, site + "/strict");
  await widget.getByLabel("Subject").fill("Strict page");
  await widget.getByRole("textbox", { name: "Message", exact: true }).fill("Does this work?");
  await widget.getByRole("button", { name: "Start chat" }).click();
  await expect(widget.locator(".chat-status")).toContainText("You are in the queue");
  expect(violations).toEqual([]);
  await endChatAsCustomer(widget);
  await agent.context().close();
  await customer.context().close();
});

test("the pre-chat form's required fields are enforced and answers reach the agent", async ({ browser, request, site }) => {
  await putWidget(request, {
    fields: {
      name: "required", email: "required", subject: "hidden", group: "optional",
      custom: [{ key: "order", label: "Order number", required: true }],
    },
  });
  const agent = await (await browser.newContext()).newPage();
  const customer = await (await browser.newContext()).newPage();
  await signIn(agent);
  const widget = await openOn(customer, site + "/plain");
  await expect(widget.getByLabel("Subject")).toHaveCount(0);
  await widget.getByLabel("Name").fill("Katherine Johnson");
  await widget.getByRole("textbox", { name: "Message", exact: true }).fill("My order has not arrived.");
  const start = widget.getByRole("button", { name: "Start chat" });

  // Each problem shows beside its field, which says it is invalid and takes the
  // keyboard; a field marked required says so.
  await expect(widget.locator(".field", { has: widget.getByLabel("Email") }).locator(".required")).toBeVisible();
  await start.click();
  const email = widget.getByLabel("Email");
  await expect(widget.locator("#problem-email")).toContainText("email");
  await expect(email).toHaveAttribute("aria-invalid", "true");
  await expect(email).toBeFocused();
  await email.fill("katherine@");
  await start.click();
  await expect(widget.locator("#problem-email")).toContainText("does not look like an address");
  await email.fill("katherine@example.com");
  await start.click();
  await expect(email).not.toHaveAttribute("aria-invalid", "true");
  await expect(widget.locator("#problem-email")).toBeHidden();
  await expect(widget.getByRole("alert").filter({ hasText: 'Please answer "Order number"' })).toBeVisible();
  await expect(widget.getByLabel("Order number")).toBeFocused();
  await widget.getByLabel("Order number").fill("1042");
  await start.click();
  await expect(widget.locator(".chat-status")).toContainText("You are in the queue");

  const pop = agent.getByRole("alertdialog", { name: "Incoming chat" });
  await expect(pop.locator(".pop-customer")).toHaveText("Katherine Johnson");
  await pop.getByRole("button", { name: "Accept" }).click();
  const answers = agent.getByRole("tabpanel").locator(".case-answers");
  await expect(answers).toContainText("katherine@example.com");
  await expect(answers).toContainText("Order number");
  await expect(answers).toContainText("1042");
  await agent.getByRole("tabpanel").getByRole("button", { name: "End chat" }).click();
  await agent.context().close();
  await customer.context().close();
});

test("a site that is not on the allowed list is refused clearly", async ({ browser, request, site, parlor }) => {
  await putWidget(request, { allowed_origins: [parlor.url] });
  const customer = await (await browser.newContext()).newPage();
  const errors: string[] = [];
  customer.on("console", (message) => errors.push(message.text()));
  await customer.goto(site + "/plain");
  await expect.poll(() => errors.join("\n")).toContain("is not allowed to show the chat");
  await expect(launcher(customer)).toHaveCount(0);
  await expect(customer.locator("iframe")).toHaveCount(0);

  // Parlor's own demo page is still allowed.
  await customer.goto("/demo");
  await expect(launcher(customer)).toBeVisible();
  await customer.context().close();
});

test("the widget works by keyboard alone", async ({ browser, site }) => {
  const agent = await (await browser.newContext()).newPage();
  await signIn(agent);
  const customer = await (await browser.newContext()).newPage();
  await customer.goto(site + "/plain");
  await launcher(customer).focus();
  await customer.keyboard.press("Enter");
  const widget = customer.frameLocator('iframe[title="Chat with us"]');
  await expect(widget.getByLabel("Name")).toBeFocused();
  await customer.keyboard.type("Hedy Lamarr");
  await customer.keyboard.press("Tab");
  await expect(widget.getByLabel("Email (optional)")).toBeFocused();
  await customer.keyboard.press("Tab");
  await customer.keyboard.type("Frequency hopping");
  // A group field sits between subject and message when the admin made groups.
  const message = widget.getByRole("textbox", { name: "Message", exact: true });
  for (let i = 0; i < 3 && !(await message.evaluate((m) => m === document.activeElement)); i++) {
    await customer.keyboard.press("Tab");
  }
  await customer.keyboard.type("Can you help?");
  await customer.keyboard.press("Tab");
  await expect(widget.getByRole("button", { name: "Start chat" })).toBeFocused();
  await customer.keyboard.press("Enter");
  await expect(widget.locator(".chat-status")).toContainText("You are in the queue");
  // After Start chat the keyboard is in the message box.
  await expect(widget.getByRole("textbox", { name: "Message", exact: true })).toBeFocused();
  await widget.getByRole("button", { name: "End chat" }).focus();
  await customer.keyboard.press("Enter");
  // The question takes the keyboard on its safe answer; the other is one Tab back.
  await expect(widget.getByRole("button", { name: "Keep chatting" })).toBeFocused();
  await customer.keyboard.press("Shift+Tab");
  await customer.keyboard.press("Enter");
  await expect(widget.locator(".chat-status")).toContainText("You ended the chat.");
  // Escape closes the panel and gives the launcher the keyboard back.
  await customer.keyboard.press("Escape");
  await expect(launcher(customer)).toBeFocused();
  await expect(launcher(customer)).toHaveAttribute("aria-expanded", "false");
  await agent.context().close();
  await customer.context().close();
});

test("with nobody to answer, the widget offers the message form and the message becomes a case", async ({ browser, site }) => {
  const customer = await (await browser.newContext()).newPage();
  await customer.goto(site + "/plain");
  await launcher(customer).click();
  const widget = customer.frameLocator('iframe[title="Chat with us"]');
  const send = widget.getByRole("button", { name: "Send message" });
  await expect(send).toBeVisible();
  await expect(widget.locator(".prechat-intro")).toContainText("Nobody is available to chat right now");
  await widget.getByLabel("Name").fill("Mary Jackson");
  await widget.getByLabel("Subject").fill("Wind tunnel");
  await widget.getByRole("textbox", { name: "Message", exact: true }).fill("Please call me tomorrow.");
  await send.click();
  await expect(widget.locator("#problem-email")).toContainText("email");
  await widget.getByLabel("Email", { exact: true }).fill("mary@example.com");
  await send.click();
  await expect(widget.locator(".message-left")).toContainText("will answer at mary@example.com");

  const agent = await (await browser.newContext()).newPage();
  await signIn(agent);
  await agent.getByRole("link", { name: "Cases" }).click();
  const row = agent.locator(".cases-table tr", { hasText: "Mary Jackson" });
  await expect(row).toContainText("Message left (answer to mary@example.com)");
  await row.getByRole("button", { name: "Open" }).click();
  await expect(agent.getByRole("tabpanel").locator(".msg-customer")).toContainText("Please call me tomorrow.");

  // With an agent there now, the customer's widget offers a chat again.
  await widget.getByRole("button", { name: "Write another message" }).click();
  await expect(widget.getByRole("button", { name: "Start chat" })).toBeVisible();
  await agent.context().close();
  await customer.context().close();
});

test("an admin edits the widget on the Appearance page with a live preview, and sites get it", async ({ browser, site, parlor }) => {
  const admin = await (await browser.newContext()).newPage();
  await signIn(admin);
  await admin.getByRole("link", { name: "Appearance" }).click();
  const form = admin.locator(".widget-settings");
  const preview = admin.frameLocator('iframe[title="Widget preview"]');
  await expect(preview.getByRole("button", { name: "Start chat" })).toBeVisible();

  await form.getByLabel("Title").fill("Ask Northwind");
  await expect(preview.locator(".panel-title")).toHaveText("Ask Northwind");
  await form.getByLabel("Greeting").fill("We reply in minutes.");
  await expect(preview.locator(".prechat-intro")).toHaveText("We reply in minutes.");
  await form.getByLabel("Email").selectOption("Required");
  await expect(preview.getByLabel("Email", { exact: true })).toBeVisible();
  await form.getByRole("button", { name: "Add a question" }).click();
  await form.getByLabel("Question", { exact: true }).fill("Order number");
  await form.getByLabel("Key").fill("order");
  await expect(preview.getByLabel("Order number (optional)")).toBeVisible();
  await expect(admin.locator(".embed-snippet")).toHaveText(`<script async src="${parlor.url}/widget.js"></script>`);

  // A bad origin is refused with a clear message and nothing is saved.
  await form.getByLabel(/Allowed sites/).fill("shop.example.com");
  await form.getByRole("button", { name: "Save appearance" }).click();
  await expect(form.locator(".form-problem")).toContainText("is not a site's origin");
  await form.getByLabel(/Allowed sites/).fill("");
  await form.getByRole("button", { name: "Save appearance" }).click();
  await expect(form.locator(".saved")).toHaveText("Saved.");

  const customer = await (await browser.newContext()).newPage();
  await customer.goto(site + "/plain");
  await launcher(customer).click();
  const widget = customer.frameLocator('iframe[title="Ask Northwind"]');
  await expect(widget.locator(".panel-title")).toHaveText("Ask Northwind");
  await expect(widget.getByLabel("Order number (optional)")).toBeVisible();
  await admin.context().close();
  await customer.context().close();
});

test("a reply while the panel is closed shows a count and a preview on the launcher; opening clears them", async ({ browser, site }) => {
  const agent = await (await browser.newContext()).newPage();
  const customer = await (await browser.newContext()).newPage();
  await signIn(agent);
  const widget = await openOn(customer, site + "/plain");
  await widget.getByLabel("Name").fill("Ida Tarbell");
  await widget.getByLabel("Subject").fill("Parcel");
  await widget.getByRole("textbox", { name: "Message", exact: true }).fill("Where is my parcel?");
  await widget.getByRole("button", { name: "Start chat" }).click();
  await acceptScreenPop(agent, "Ida Tarbell", "Parcel");
  await customer.getByRole("button", { name: "Close chat" }).click();

  const reply = agent.getByRole("tabpanel").getByRole("textbox", { name: "Message", exact: true });
  await reply.fill("Your parcel left today.");
  await reply.press("Enter");
  const button = customer.getByRole("button", { name: /^Open chat/ });
  await expect(button).toHaveAccessibleName("Open chat, 1 unread message");
  await expect(customer.locator("[data-parlor] .badge")).toHaveText("1");
  const preview = customer.getByRole("button", { name: "Admin: Your parcel left today." });
  await expect(preview).toBeVisible();
  await expect(customer.getByRole("status")).toHaveText("New message from Admin: Your parcel left today.");
  await reply.fill("It should arrive tomorrow.");
  await reply.press("Enter");
  await expect(button).toHaveAccessibleName("Open chat, 2 unread messages");
  await expect(customer.getByRole("button", { name: "Admin: It should arrive tomorrow." })).toBeVisible();

  // Dismissed, the preview goes and the count stays; opening the chat clears both.
  await customer.getByRole("button", { name: "Dismiss" }).click();
  await expect(customer.locator("[data-parlor] .bubble")).toBeHidden();
  await expect(customer.locator("[data-parlor] .badge")).toHaveText("2");
  await button.click();
  await expect(customer.getByRole("button", { name: "Close chat" })).toHaveAccessibleName("Close chat");
  await expect(customer.locator("[data-parlor] .badge")).toBeHidden();
  await expect(widget.locator(".msg-agent").last()).toContainText("It should arrive tomorrow.");
  await agent.context().close();
  await customer.context().close();
});

test("the panel loads ahead of a click on intent or when the page is idle, makes no visitor until opened, and a site can turn that off", async ({ browser, site }) => {
  const customer = await (await browser.newContext()).newPage();
  const sockets: string[] = [];
  customer.on("websocket", (socket) => sockets.push(socket.url()));
  await customer.goto(site + "/plain");
  await launcher(customer).hover();
  const widget = customer.frameLocator('iframe[title="Chat with us"]');
  await expect(widget.locator(".panel")).toBeAttached();
  await customer.waitForTimeout(500);
  expect(sockets).toEqual([]);
  await launcher(customer).click();
  // With nobody signed in, the form is the one for leaving a message.
  await expect(widget.locator(".prechat button[type=submit]")).toBeVisible();
  await expect(widget.locator(".link-banner")).toBeHidden();
  expect(sockets.length).toBe(1);

  // Idle for a few seconds, the page loads the panel by itself.
  const idle = await (await browser.newContext()).newPage();
  await idle.goto(site + "/plain");
  await expect(idle.frameLocator('iframe[title="Chat with us"]').locator(".panel")).toBeAttached({ timeout: 10_000 });

  // data-parlor-prefetch="off": nothing loads before the click.
  const off = await (await browser.newContext()).newPage();
  await off.goto(site + "/no-prefetch");
  await launcher(off).hover();
  await off.waitForTimeout(4_000);
  await expect(off.locator("iframe")).toHaveCount(0);
  await launcher(off).click();
  await expect(off.frameLocator('iframe[title="Chat with us"]').locator(".prechat button[type=submit]")).toBeVisible();
  for (const page of [customer, idle, off]) await page.context().close();
});
