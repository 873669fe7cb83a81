// The first chat, end to end, by clicking and typing: a customer on the demo site and
// an agent in the console, in two separate browser contexts.
import { test, expect, type Browser, type Page, type FrameLocator } from "@playwright/test";
import { adminEmail, adminPassword } from "../playwright.config";

/** An agent and a customer, each in a browser context of their own. */
async function twoSides(browser: Browser) {
  const agentContext = await browser.newContext();
  const customerContext = await browser.newContext();
  return {
    agent: await agentContext.newPage(),
    customer: await customerContext.newPage(),
    close: async () => {
      await agentContext.close();
      await customerContext.close();
    },
  };
}

async function signIn(page: Page) {
  await page.goto("/console/");
  await page.getByLabel("Email").fill(adminEmail);
  await page.getByLabel("Password").fill(adminPassword);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.locator(".link-state")).toHaveText("Connected");
  const routing = page.getByRole("switch");
  if (!(await routing.isChecked())) await routing.check();
  await expect(page.locator(".routing-switch")).toContainText("Routing on");
}

async function openWidget(page: Page): Promise<FrameLocator> {
  await page.goto("/demo");
  await page.getByRole("button", { name: "Open chat" }).click();
  const widget = page.frameLocator('iframe[title="Chat with us"]');
  await expect(widget.getByRole("button", { name: "Start chat" })).toBeVisible();
  return widget;
}

async function startChat(widget: FrameLocator, name: string, subject: string, message: string) {
  await widget.getByLabel("Name").fill(name);
  await widget.getByLabel("Subject").fill(subject);
  await widget.getByRole("textbox", { name: "Message", exact: true }).fill(message);
  await widget.getByRole("button", { name: "Start chat" }).click();
  await expect(widget.locator(".chat-status")).toContainText("You are in the queue");
}

async function acceptScreenPop(agent: Page, name: string, subject: string) {
  const pop = agent.getByRole("alertdialog", { name: "Incoming chat" });
  await expect(pop).toBeVisible();
  await expect(pop.locator(".pop-customer")).toHaveText(name);
  await expect(pop.locator(".pop-subject")).toHaveText(subject);
  const seconds = Number(await pop.locator(".pop-countdown").textContent());
  expect(seconds).toBeGreaterThan(0);
  expect(seconds).toBeLessThanOrEqual(30);
  await pop.getByRole("button", { name: "Details" }).click();
  await expect(pop.locator(".pop-details")).toContainText("Location");
  await expect(pop.locator(".pop-details")).toContainText("time zone");
  await pop.getByRole("button", { name: "Accept" }).click();
  await expect(pop).toBeHidden();
}

test("a customer's chat is routed, accepted, talked through and ended by the customer", async ({ browser }) => {
  const { agent, customer, close } = await twoSides(browser);

  await signIn(agent);
  const widget = await openWidget(customer);
  await startChat(widget, "Grace Hopper", "Order 1042 is late", "Hello, where is my order?");

  await acceptScreenPop(agent, "Grace Hopper", "Order 1042 is late");
  const caseView = agent.getByRole("tabpanel");
  await expect(caseView.locator(".case-subject")).toHaveText("Order 1042 is late");
  await expect(caseView.locator(".msg-customer")).toContainText("Hello, where is my order?");

  // The customer is told the agent joined.
  await expect(widget.locator(".chat-status")).toContainText("You are chatting with Admin");
  await expect(widget.locator(".msg-system")).toContainText("Admin joined the chat.");

  // Agent to customer: Enter sends.
  const reply = caseView.getByRole("textbox", { name: "Message", exact: true });
  await reply.fill("Hi Grace, let me check that for you.");
  await reply.press("Enter");
  await expect(widget.locator(".msg-agent")).toContainText("Hi Grace, let me check that for you.");

  // Customer to agent.
  const input = widget.getByRole("textbox", { name: "Message", exact: true });
  await input.fill("Thanks! It was due on Monday.");
  await input.press("Enter");
  await expect(caseView.locator(".msg-customer").last()).toContainText("It was due on Monday.");
  await expect(widget.locator(".msg-pending")).toHaveCount(0);

  // The customer ends the chat: both sides see it at once.
  await widget.getByRole("button", { name: "End chat" }).click();
  await expect(widget.locator(".chat-status")).toContainText("You ended the chat.");
  await expect(widget.getByRole("button", { name: "Start a new chat" })).toBeVisible();
  await expect(caseView.locator(".chat-status")).toContainText("The customer ended the chat.");
  await expect(caseView.getByRole("textbox", { name: "Message", exact: true })).toBeDisabled();
  await expect(agent.locator(".case-tab", { hasText: "Grace Hopper" })).toContainText("Ended");

  await close();
});

test("the agent ends a chat and the customer sees it", async ({ browser }) => {
  const { agent, customer, close } = await twoSides(browser);

  await signIn(agent);
  const widget = await openWidget(customer);
  await startChat(widget, "Alan Turing", "Password reset", "I cannot sign in.");
  await acceptScreenPop(agent, "Alan Turing", "Password reset");

  const caseView = agent.getByRole("tabpanel");
  await expect(caseView.locator(".case-subject")).toHaveText("Password reset");
  await caseView.getByRole("button", { name: "End chat" }).click();
  await expect(caseView.locator(".chat-status")).toContainText("Admin ended the chat.");
  await expect(widget.locator(".chat-status")).toContainText("Admin ended the chat.");
  await expect(widget.locator(".msg-system").last()).toHaveText("Admin ended the chat.");

  await close();
});
