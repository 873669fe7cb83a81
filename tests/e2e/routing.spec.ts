// Routing as the help desk describes it, with two agents and one customer: an ignored
// screen pop moves on and switches the ignoring agent's routing off; Disable does the
// same at once; the chat cycles until someone accepts.
import type { Page } from "@playwright/test";
import { test, expect } from "./fixtures";
import { twoSides, signIn, openWidget, startChat, createAgent } from "./helpers";

const bea = { email: "bea@parlor.local", password: "bea-password-1" };

async function openAdminPage(page: Page, name: string) {
  await page.locator(".pages").getByRole("link", { name }).click();
}

async function setRouting(page: Page, screenPopSeconds: number) {
  await openAdminPage(page, "Settings");
  const timeout = page.getByLabel("Screen-pop timeout (seconds)");
  await expect(timeout).not.toHaveValue("");
  await timeout.fill(String(screenPopSeconds));
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.locator(".routing-settings .saved")).toHaveText("Saved.");
}

test("an ignored screen pop moves on and switches routing off; Disable does too; the chat cycles until accepted", async ({ browser }) => {
  const { agent: ada, customer, close } = await twoSides(browser);
  await signIn(ada);

  // The admin sets a short screen-pop timeout (long enough to see the pop on a busy machine), makes a group and a second agent in it,
  // and joins the group too.
  await setRouting(ada, 6);
  await openAdminPage(ada, "Groups");
  await ada.getByLabel("New group").fill("Billing");
  await ada.getByRole("button", { name: "Create group" }).click();
  await expect(ada.getByLabel("Name of group Billing")).toBeVisible();

  await openAdminPage(ada, "Agents");
  await ada.getByLabel("Name", { exact: true }).fill("Bea Agent");
  await ada.getByLabel("Email").fill(bea.email);
  await ada.getByLabel("Password").fill(bea.password);
  await ada.getByLabel("Capacity (chats at once)").fill("2");
  await ada.locator(".agent-groups").getByLabel("Billing").check();
  await ada.getByRole("button", { name: "Save agent" }).click();
  const beaRow = ada.locator(`tr[data-agent="${bea.email}"]`);
  await expect(beaRow).toContainText("Billing");
  await ada.locator('tr[data-agent="admin@parlor.local"]').getByRole("button", { name: "Edit" }).click();
  await ada.locator(".agent-groups").getByLabel("Billing").check();
  await ada.getByRole("button", { name: "Save agent" }).click();
  await expect(ada.locator('tr[data-agent="admin@parlor.local"]')).toContainText("Billing");
  await openAdminPage(ada, "Chats");

  const beaContext = await browser.newContext();
  const beaPage = await beaContext.newPage();
  await signIn(beaPage, bea.email, bea.password);

  // The customer asks Billing; Ada has been idle longest, so the screen pop is hers.
  const widget = await openWidget(customer);
  await startChat(widget, "Grace Hopper", "Invoice is wrong", "I was charged twice.", "Billing");
  await expect(widget.locator(".chat-status")).toContainText("next in line");
  const adaPop = ada.getByRole("alertdialog", { name: "Incoming chat" });
  const beaPop = beaPage.getByRole("alertdialog", { name: "Incoming chat" });
  await expect(adaPop).toBeVisible();
  await expect(beaPop).toBeHidden();
  await expect(ada.locator(".waiting-chat")).toContainText("Grace Hopper");

  // Ada ignores it: at 0 it goes to Bea, and Ada's switch shows off.
  await expect(beaPop).toBeVisible({ timeout: 15_000 });
  await expect(adaPop).toBeHidden();
  await expect(ada.getByRole("switch")).not.toBeChecked();
  await expect(ada.locator(".notice")).toContainText("not accepted in time");

  // Bea presses Disable: her routing goes off and nobody is left, so the chat waits.
  await beaPop.getByRole("button", { name: "Disable" }).click();
  await expect(beaPop).toBeHidden();
  await expect(beaPage.getByRole("switch")).not.toBeChecked();
  await expect(widget.locator(".chat-status")).toContainText("in the queue");

  // Ada switches back on: the notice is no longer true and goes; the chat comes back.
  await ada.getByRole("switch").check();
  await expect(ada.locator(".notice")).toBeHidden();
  await expect(adaPop).toBeVisible();
  await adaPop.getByRole("button", { name: "Details" }).click();
  const details = adaPop.locator(".pop-details");
  await expect(details).toContainText("Invoice is wrong");
  await expect(details).toContainText("Billing");
  await expect(details).toContainText("time zone");
  await expect(details.locator("dt", { hasText: "Created" })).toBeVisible();
  await expect(details.locator("dd").nth(3)).toHaveText(/^\d{2}:\d{2}:\d{2}$/);
  await adaPop.getByRole("button", { name: "Accept" }).click();
  await expect(widget.locator(".chat-status")).toContainText("You are chatting with Admin");
  await expect(ada.locator(".waiting-empty")).toBeVisible();

  // The offer log tells the whole story.
  const caseView = ada.getByRole("tabpanel");
  await caseView.locator(".offer-log summary").click();
  const log = caseView.locator(".offer-log-list li");
  await expect(log).toHaveCount(3);
  await expect(log.nth(0)).toContainText("Admin");
  await expect(log.nth(0)).toContainText("timed out");
  await expect(log.nth(1)).toContainText("Bea Agent");
  await expect(log.nth(1)).toContainText("disabled");
  await expect(log.nth(2)).toContainText("accepted");

  await caseView.getByRole("button", { name: "End chat" }).click();
  await expect(widget.locator(".chat-status")).toContainText("Admin ended the chat.");
  await beaContext.close();
  await close();
});

test("with routing off for the channel, agents enter waiting chats from the list and only one gets each", async ({ browser }) => {
  const { agent: ada, customer, close } = await twoSides(browser);
  await signIn(ada);
  await openAdminPage(ada, "Settings");
  await ada.getByLabel("Route chats to agents (screen pops)").uncheck();
  await ada.getByRole("button", { name: "Save settings" }).click();
  await expect(ada.locator(".routing-settings .saved")).toHaveText("Saved.");
  await expect(ada.locator(".channel-off")).toBeVisible();
  await openAdminPage(ada, "Chats");
  await createAgent(ada.request, { name: "Bea Agent", ...bea });

  const beaContext = await browser.newContext();
  const beaPage = await beaContext.newPage();
  await signIn(beaPage, bea.email, bea.password);

  const widget = await openWidget(customer);
  await startChat(widget, "Alan Turing", "Shipping question", "Where is it?");
  const adaEntry = ada.locator(".waiting-chat", { hasText: "Alan Turing" });
  const beaEntry = beaPage.locator(".waiting-chat", { hasText: "Alan Turing" });
  await expect(adaEntry).toBeVisible();
  await expect(beaEntry).toBeVisible();
  await expect(ada.getByRole("alertdialog", { name: "Incoming chat" })).toBeHidden();

  await beaEntry.getByRole("button", { name: "Enter" }).click();
  await expect(beaPage.getByRole("tabpanel").locator(".case-subject")).toHaveText("Shipping question");
  await expect(widget.locator(".chat-status")).toContainText("You are chatting with Bea Agent");
  await expect(adaEntry).toBeHidden();

  await beaPage.getByRole("tabpanel").getByRole("button", { name: "End chat" }).click();
  await expect(widget.locator(".chat-status")).toContainText("Bea Agent ended the chat.");
  await beaContext.close();
  await close();
});

test("the routing switch shows the agent's click at once, even while the server is slow to answer", async ({ page, parlor }) => {
  await signIn(page);
  const routing = page.getByRole("switch");
  await expect(routing).toBeChecked();

  // The server stops answering for a moment; the click still shows, marked as waiting.
  parlor.process.kill("SIGSTOP");
  try {
    await routing.uncheck();
    await expect(page.locator(".routing-switch")).toContainText("Routing off");
    await expect(routing).toHaveAttribute("aria-busy", "true");
  } finally {
    parlor.process.kill("SIGCONT");
  }
  // The server's answer confirms it, and it holds after a reload.
  await expect(routing).not.toHaveAttribute("aria-busy", "true");
  await page.reload();
  await expect(page.locator(".link-state")).toHaveText("Connected");
  await expect(routing).not.toBeChecked();
});
