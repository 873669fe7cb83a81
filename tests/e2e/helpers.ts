// Steps the browser tests share: signing in, opening the widget, starting and accepting chats.
import type { APIRequestContext, Browser, Page, FrameLocator } from "@playwright/test";
import { expect, adminEmail, adminPassword } from "./fixtures";

/** An agent and a customer, each in a browser context of their own. */
export async function twoSides(browser: Browser) {
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

export async function signIn(page: Page, email = adminEmail, password = adminPassword) {
  await page.goto("/console/");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.locator(".link-state")).toHaveText("Connected");
  const routing = page.getByRole("switch");
  if (!(await routing.isChecked())) await routing.check();
  await expect(page.locator(".routing-switch")).toContainText("Routing on");
}

export async function openWidget(page: Page): Promise<FrameLocator> {
  await page.goto("/demo");
  await page.getByRole("button", { name: "Open chat" }).click();
  const widget = page.frameLocator('iframe[title="Chat with us"]');
  await expect(widget.getByRole("button", { name: "Start chat" })).toBeVisible();
  return widget;
}

export async function startChat(
  widget: FrameLocator,
  name: string,
  subject: string,
  message: string,
  group?: string,
) {
  await widget.getByLabel("Name").fill(name);
  await widget.getByLabel("Subject").fill(subject);
  if (group) await widget.getByLabel("Group").selectOption({ label: group });
  await widget.getByRole("textbox", { name: "Message", exact: true }).fill(message);
  await widget.getByRole("button", { name: "Start chat" }).click();
  await expect(widget.locator(".chat-status")).toContainText("You are in the queue");
}

/** The customer ends their chat: End chat asks once, and they say yes. */
export async function endChatAsCustomer(widget: FrameLocator) {
  await widget.getByRole("button", { name: "End chat" }).click();
  await expect(widget.getByText("End this chat?")).toBeVisible();
  await widget.getByRole("button", { name: "End chat" }).click();
  await expect(widget.locator(".chat-status")).toContainText("You ended the chat.");
}

export async function acceptScreenPop(agent: Page, name: string, subject: string) {
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


/** An agent made by the admin through the API (`request` must be signed in as an admin). */
export async function createAgent(
  request: APIRequestContext,
  agent: { name: string; email: string; password: string; capacity?: number; groups?: number[] },
) {
  const made = await request.post("/api/agents", {
    data: { is_admin: false, active: true, capacity: 2, groups: [], ...agent },
  });
  expect(made.status(), await made.text()).toBe(201);
}

/** Signs an API request context in as the first admin. */
export async function signInApi(request: APIRequestContext) {
  const login = await request.post("/api/login", { data: { email: adminEmail, password: adminPassword } });
  expect(login.ok(), await login.text()).toBeTruthy();
}
