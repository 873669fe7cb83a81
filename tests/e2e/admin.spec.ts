// Admin pages that say what they did: saving says so, the Groups page shows members and
// removes a group after saying what happens, the Agents page shows who is online now.
import { test, expect } from "./fixtures";
import { signIn, createAgent } from "./helpers";

test("groups show their members and can be removed after a clear question; agents show who is online; saving says so", async ({ page }) => {
  await signIn(page);
  const pages = page.locator(".pages");
  await pages.getByRole("link", { name: "Groups" }).click();
  const groupsPage = page.locator(".groups-page");
  await groupsPage.getByLabel("New group").fill("Billing");
  await groupsPage.getByRole("button", { name: "Create group" }).click();
  await expect(groupsPage.locator(".saved")).toHaveText("Group Billing created.");
  const billing = groupsPage.locator('.group-row[data-group="Billing"]');
  await expect(billing.locator(".group-members")).toHaveText("No members yet");

  // Bea joins it on the Agents page; saving says so; the admin is online, Bea is not.
  await pages.getByRole("link", { name: "Agents" }).click();
  const agentsPage = page.locator(".agents-page");
  await agentsPage.getByLabel("Name").fill("Bea Agent");
  await agentsPage.getByLabel("Email").fill("bea@example.com");
  await agentsPage.getByLabel("Password").fill("bea-password-1");
  await agentsPage.locator(".agent-groups").getByLabel("Billing").check();
  await agentsPage.getByRole("button", { name: "Save agent" }).click();
  await expect(agentsPage.locator(".saved")).toHaveText("Saved Bea Agent.");
  await expect(agentsPage.locator('tr[data-agent="admin@parlor.local"] td.online')).toHaveText("Online");
  await expect(agentsPage.locator('tr[data-agent="bea@example.com"] td.offline')).toHaveText("Offline");

  await pages.getByRole("link", { name: "Groups" }).click();
  await expect(billing.locator(".group-members")).toHaveText("Members: Bea Agent");
  let question = "";
  page.once("dialog", async (dialog) => {
    question = dialog.message();
    await dialog.accept();
  });
  await billing.getByRole("button", { name: "Remove" }).click();
  await expect(groupsPage.locator(".saved")).toHaveText("Group Billing removed.");
  expect(question).toContain("Its 1 agent(s) stay");
  await expect(billing).toHaveCount(0);
});

test("a group stays when the admin answers no", async ({ page }) => {
  await signIn(page);
  await page.locator(".pages").getByRole("link", { name: "Groups" }).click();
  const groupsPage = page.locator(".groups-page");
  await groupsPage.getByLabel("New group").fill("Sales");
  await groupsPage.getByRole("button", { name: "Create group" }).click();
  const sales = groupsPage.locator('.group-row[data-group="Sales"]');
  await expect(sales).toBeVisible();
  page.once("dialog", (dialog) => dialog.dismiss());
  await sales.getByRole("button", { name: "Remove" }).click();
  await expect(sales).toBeVisible();
  await expect(groupsPage.locator(".saved")).toHaveText("Group Sales created.");
});

test("the Appearance page takes a colour as hex too, shows the launcher where it will sit, and warns before unsaved edits are lost", async ({ page }) => {
  await signIn(page);
  const pages = page.locator(".pages");
  await pages.getByRole("link", { name: "Appearance" }).click();
  const form = page.locator(".appearance-page");
  const hex = form.getByLabel("Brand colour as hex");
  await expect(hex).not.toHaveValue("");
  await hex.fill("#0f766e");
  await hex.press("Enter");
  await expect(form.locator('input[name="widget-color"]')).toHaveValue("#0f766e");
  await expect(form.locator(".preview-launcher")).toHaveCSS("background-color", "rgb(15, 118, 110)");
  await form.getByLabel("Position").selectOption({ label: "Bottom left" });
  await expect(form.locator(".preview-stage")).toHaveAttribute("data-side", "left");

  // Leaving now asks first; staying keeps the edits.
  let asked = "";
  page.once("dialog", async (dialog) => {
    asked = dialog.message();
    await dialog.dismiss();
  });
  await pages.getByRole("link", { name: "Chats" }).click();
  await expect(form).toBeVisible();
  expect(asked).toContain("not saved");
  await expect(hex).toHaveValue("#0f766e");

  // The back button asks too; staying brings the page back with the edits.
  asked = "";
  page.once("dialog", async (dialog) => {
    asked = dialog.message();
    await dialog.dismiss();
  });
  await page.goBack();
  await expect.poll(() => asked).toContain("not saved");
  await expect(page).toHaveURL(/\/console\/appearance$/);
  await expect(hex).toHaveValue("#0f766e");
  await expect(form.locator(".preview-stage")).toHaveAttribute("data-side", "left");

  // Saved: leaving asks nothing.
  await form.getByRole("button", { name: "Save appearance" }).click();
  await expect(form.locator(".saved")).toHaveText("Saved.");
  page.on("dialog", (dialog) => {
    throw new Error(`unexpected question: ${dialog.message()}`);
  });
  await pages.getByRole("link", { name: "Chats" }).click();
  await expect(form).toBeHidden();
});

test("an edit made while the Appearance page is saving stays, and stays unsaved", async ({ page }) => {
  await signIn(page);
  const pages = page.locator(".pages");
  await pages.getByRole("link", { name: "Appearance" }).click();
  const form = page.locator(".appearance-page");
  const hex = form.getByLabel("Brand colour as hex");
  await expect(hex).not.toHaveValue("");

  // The save's answer is held until the admin has made the next edit.
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route("**/api/settings/widget", async (route) => {
    if (route.request().method() !== "PUT") return route.continue();
    const response = await route.fetch();
    await held;
    await route.fulfill({ response });
  });
  await hex.fill("#0f766e");
  await hex.press("Enter");
  await form.getByLabel("Position").selectOption({ label: "Bottom left" });
  release();
  await expect(form.locator(".saved")).toHaveText("Saved.");
  await expect(form.locator(".preview-stage")).toHaveAttribute("data-side", "left");
  await expect(form.getByLabel("Position")).toHaveValue("left");
  await expect(hex).toHaveValue("#0f766e");

  // The position is not saved yet, so leaving asks.
  let asked = "";
  page.once("dialog", async (dialog) => {
    asked = dialog.message();
    await dialog.dismiss();
  });
  await pages.getByRole("link", { name: "Chats" }).click();
  await expect.poll(() => asked).toContain("not saved");
  await expect(form).toBeVisible();
});

test("an admin removes an agent after a clear question, and the agent is signed out", async ({ browser, page }) => {
  await signIn(page);
  await createAgent(page.request, { name: "Bea Agent", email: "bea@example.com", password: "bea-password-1" });
  const bea = await (await browser.newContext()).newPage();
  await signIn(bea, "bea@example.com", "bea-password-1");

  await page.locator(".pages").getByRole("link", { name: "Agents" }).click();
  const agentsPage = page.locator(".agents-page");
  const row = agentsPage.locator('tr[data-agent="bea@example.com"]');
  await expect(row.locator("td.online")).toHaveText("Online");
  let question = "";
  page.once("dialog", async (dialog) => {
    question = dialog.message();
    await dialog.accept();
  });
  await row.getByRole("button", { name: "Remove" }).click();
  await expect(agentsPage.locator(".saved")).toHaveText("Bea Agent removed.");
  expect(question).toContain("chats they are in go back to the queue now");
  await expect(row).toHaveCount(0);
  await expect(bea.getByRole("button", { name: "Sign in" })).toBeVisible();
  await bea.context().close();
});
