// Working chats in the console: two at once with red dots, read-only watching, closing
// a tab, Update with and without Close tab, and resolving a live chat.
import type { Page, FrameLocator } from "@playwright/test";
import { test, expect } from "./fixtures";
import { signIn, openWidget, startChat, acceptScreenPop, createAgent, endChatAsCustomer } from "./helpers";

const carl = { email: "carl@parlor.local", password: "carl-password-1" };

function tab(agent: Page, name: string) {
  return agent.locator(".case-tab-wrap", { hasText: name });
}

async function systemMessages(widget: FrameLocator) {
  return widget.locator(".msg-system").count();
}

test("an agent works two chats: red dots, read-only watchers, close tab, update and resolve", async ({ browser }) => {
  const agentContext = await browser.newContext();
  const agent = await agentContext.newPage();
  await signIn(agent);
  await createAgent(agent.request, { name: "Carl Watcher", ...carl });

  const adaContext = await browser.newContext();
  const ada = await openWidget(await adaContext.newPage());
  await startChat(ada, "Ada Lovelace", "Engine notes", "Hello from Ada");
  await acceptScreenPop(agent, "Ada Lovelace", "Engine notes");
  const alanContext = await browser.newContext();
  const alan = await openWidget(await alanContext.newPage());
  await startChat(alan, "Alan Turing", "Machine question", "Hello from Alan");
  await acceptScreenPop(agent, "Alan Turing", "Machine question");

  // Two chats at once; Alan's is in front. A message from Ada lights her red dot.
  const panel = agent.getByRole("tabpanel");
  await expect(panel.locator(".case-subject")).toHaveText("Machine question");
  await ada.getByRole("textbox", { name: "Message", exact: true }).fill("Are you there?");
  await ada.getByRole("textbox", { name: "Message", exact: true }).press("Enter");
  await expect(tab(agent, "Ada").locator(".red-dot")).toBeVisible();
  await expect(tab(agent, "Alan").locator(".red-dot")).toHaveCount(0);
  await expect(agent).toHaveTitle("(1) Parlor console");
  await tab(agent, "Ada").locator(".case-tab").click();
  await expect(panel.locator(".msg-customer").last()).toHaveText(/Are you there\?/);
  await expect(tab(agent, "Ada").locator(".red-dot")).toHaveCount(0);
  await expect(agent).toHaveTitle("Parlor console");

  // Another agent opens Ada's case read-only from the case list: Ada is not told.
  const before = await systemMessages(ada);
  const carlContext = await browser.newContext();
  const watcher = await carlContext.newPage();
  await signIn(watcher, carl.email, carl.password);
  await watcher.locator(".pages").getByRole("link", { name: "Cases" }).click();
  await watcher.locator("tr", { hasText: "Engine notes" }).getByRole("button", { name: "Open" }).click();
  const watched = watcher.getByRole("tabpanel");
  await expect(watched.locator(".read-only-badge")).toBeVisible();
  await expect(watched.locator(".msg-customer").first()).toHaveText(/Hello from Ada/);
  await expect(watched.getByRole("textbox", { name: "Message", exact: true })).toBeDisabled();
  await expect(watched.getByRole("button", { name: "End chat" })).toHaveCount(0);
  // The case fields are the agent's in the chat while it is live.
  await expect(watched.getByRole("form", { name: "Case fields" }).getByLabel("Status")).toBeDisabled();
  await expect(watched.getByRole("form", { name: "Case fields" }).getByRole("button", { name: "Update" })).toBeDisabled();
  await panel.getByRole("textbox", { name: "Message", exact: true }).fill("Yes, here.");
  await panel.getByRole("textbox", { name: "Message", exact: true }).press("Enter");
  await expect(watched.locator(".msg-theirs").last()).toHaveText(/Yes, here\./);
  expect(await systemMessages(ada)).toBe(before);
  await carlContext.close();

  // Update without Close tab keeps the tab and tells the customer nothing.
  await tab(agent, "Alan").locator(".case-tab").click();
  const fields = panel.getByRole("form", { name: "Case fields" });
  const alanBefore = await systemMessages(alan);
  await fields.getByLabel("Status").selectOption("Pending");
  // While the chat is live the box starts unchecked: updating keeps the customer.
  await expect(fields.getByLabel("Close tab")).not.toBeChecked();
  await fields.getByRole("button", { name: "Update" }).click();
  await expect(fields.getByLabel("Status")).toHaveValue("Pending");
  await expect(tab(agent, "Alan")).toBeVisible();
  expect(await systemMessages(alan)).toBe(alanBefore);

  // Closing the tab (×) tells Alan the agent left and puts him back in the queue;
  // the chat is routed again.
  await tab(agent, "Alan").getByRole("button", { name: /Close tab/ }).click();
  await expect(alan.locator(".msg-system").last()).toHaveText("Admin left the chat. You are back in the queue.");
  await expect(alan.locator(".chat-status")).toContainText("in the queue");
  await expect(tab(agent, "Alan")).toHaveCount(0);
  await acceptScreenPop(agent, "Alan Turing", "Machine question");

  // Update with Close tab checked does the same, once the agent confirms it.
  await expect(panel.locator(".case-subject")).toHaveText("Machine question");
  await fields.getByLabel("Close tab").check();
  agent.once("dialog", (dialog) => dialog.accept());
  await fields.getByRole("button", { name: "Update" }).click();
  await expect(tab(agent, "Alan")).toHaveCount(0);
  await expect(alan.locator(".msg-system").last()).toHaveText("Admin left the chat. You are back in the queue.");
  await acceptScreenPop(agent, "Alan Turing", "Machine question");

  // Resolving Ada's live case places her back in the queue.
  await tab(agent, "Ada").locator(".case-tab").click();
  await fields.getByLabel("Status").selectOption("Resolved");
  agent.once("dialog", (dialog) => dialog.accept());
  await fields.getByRole("button", { name: "Update" }).click();
  await expect(ada.locator(".msg-system").last()).toHaveText("You have been placed back in the queue.");
  await expect(ada.locator(".chat-status")).toContainText("in the queue");

  // Both customers end their chats; nothing is left waiting.
  for (const widget of [ada, alan]) {
    await endChatAsCustomer(widget);
  }
  await expect(agent.getByRole("alertdialog", { name: "Incoming chat" })).toBeHidden();
  await adaContext.close();
  await alanContext.close();
  await agentContext.close();
});

test("an admin rewords a system message and it is used from the next chat on; alerts need no enabling", async ({ browser }) => {
  const agentContext = await browser.newContext({ permissions: ["notifications"] });
  const agent = await agentContext.newPage();
  await signIn(agent);
  // Signing in unlocked sound, and this browser allows notifications: nothing to enable.
  await expect(agent.locator(".link-state")).toHaveText("Connected");
  await expect(agent.locator(".enable-alerts")).toHaveCount(0);

  await agent.locator(".pages").getByRole("link", { name: "Settings" }).click();
  const joined = agent.getByLabel("Text: Agent joined");
  await expect(joined).toHaveValue("{agent} joined the chat.");
  await joined.fill("{agent} is here to help.");
  await agent.getByRole("button", { name: "Save chat settings" }).click();
  await expect(agent.locator(".chat-settings .saved")).toHaveText("Saved.");
  await agent.locator(".pages").getByRole("link", { name: "Chats" }).click();

  const customerContext = await browser.newContext();
  const widget = await openWidget(await customerContext.newPage());
  await startChat(widget, "Grace Hopper", "Wording", "Hi");
  await acceptScreenPop(agent, "Grace Hopper", "Wording");
  await expect(widget.locator(".msg-system").last()).toHaveText("Admin is here to help.");
  await endChatAsCustomer(widget);
  await customerContext.close();
  await agentContext.close();
});

test("an Update that would put a live customer back in the queue asks first, and Close tab starts unchecked while live", async ({ browser }) => {
  const agentContext = await browser.newContext();
  const agent = await agentContext.newPage();
  await signIn(agent);
  const customerContext = await browser.newContext();
  const widget = await openWidget(await customerContext.newPage());
  await startChat(widget, "Grace Hopper", "Refund", "Where is my refund?");
  await acceptScreenPop(agent, "Grace Hopper", "Refund");
  const panel = agent.getByRole("tabpanel");
  const fields = panel.getByRole("form", { name: "Case fields" });
  const closeTab = fields.getByLabel("Close tab");
  await expect(closeTab).not.toBeChecked();
  const before = await systemMessages(widget);

  // Checked, Update asks; saying no changes nothing.
  await closeTab.check();
  const asked = new Promise<string>((resolve) =>
    agent.once("dialog", (dialog) => {
      resolve(dialog.message());
      void dialog.dismiss();
    }),
  );
  await fields.getByRole("button", { name: "Update" }).click();
  expect(await asked).toContain("back in the queue");
  await expect(tab(agent, "Grace")).toBeVisible();
  await expect(widget.locator(".chat-status")).toContainText("You are chatting with Admin");
  expect(await systemMessages(widget)).toBe(before);

  // Once the chat has ended, closing the tab is what Update does by default.
  await panel.getByRole("button", { name: "End chat" }).click();
  await expect(panel.locator(".chat-status")).toContainText("Admin ended the chat.");
  await expect(closeTab).toBeChecked();
  await fields.getByRole("button", { name: "Update" }).click();
  await expect(tab(agent, "Grace")).toHaveCount(0);
  await customerContext.close();
  await agentContext.close();
});
