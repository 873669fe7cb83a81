// Every console page has its URL: the back button, a reload and a link to a case work.
import type { Page } from "@playwright/test";
import { test, expect, adminEmail, adminPassword } from "./fixtures";
import { twoSides, signIn, openWidget, startChat, acceptScreenPop, createAgent } from "./helpers";

/** Opens `url` signed out and signs in on the page it shows, staying at that URL. */
async function signInAt(page: Page, url: string, email: string, password: string) {
  await page.goto(url);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.locator(".link-state")).toHaveText("Connected");
  await expect(page).toHaveURL(url);
}

test("console pages have URLs: back and reload keep the page, and a link to a case opens it", async ({ browser }) => {
  const { agent, customer, close } = await twoSides(browser);
  await signIn(agent);
  const widget = await openWidget(customer);
  await startChat(widget, "Grace Hopper", "Order 1042 is late", "Where is my order?");
  await acceptScreenPop(agent, "Grace Hopper", "Order 1042 is late");
  // The chat in front is in the URL.
  await expect(agent).toHaveURL(/\/console\/cases\/\d+$/);
  const caseUrl = agent.url();
  const caseId = caseUrl.split("/").pop();

  const pages = agent.locator(".pages");
  await pages.getByRole("link", { name: "Cases" }).click();
  await expect(agent).toHaveURL(/\/console\/cases$/);
  await expect(agent.getByRole("heading", { name: "Cases" })).toBeVisible();
  await agent.reload();
  await expect(agent.getByRole("heading", { name: "Cases" })).toBeVisible();
  await expect(pages.getByRole("link", { name: "Cases" })).toHaveAttribute("aria-current", "page");
  await pages.getByRole("link", { name: "Agents" }).click();
  await expect(agent.getByRole("heading", { name: "Agents" })).toBeVisible();

  // Back, twice: the Cases page, then the chat.
  await agent.goBack();
  await expect(agent.getByRole("heading", { name: "Cases" })).toBeVisible();
  await agent.goBack();
  await expect(agent).toHaveURL(caseUrl);
  await expect(agent.getByRole("tabpanel")).toHaveAttribute("data-case", caseId!);

  // The agent's own chat by its link, in a new window: its tab comes to the front.
  const again = await agent.context().newPage();
  await again.goto(caseUrl);
  await expect(again.getByRole("tabpanel")).toHaveAttribute("data-case", caseId!);
  await expect(again.getByRole("tabpanel").getByRole("textbox", { name: "Message", exact: true })).toBeEnabled();
  await again.close();

  // Ended and its tab closed, the case's link opens it read-only, whole transcript.
  await agent.getByRole("tabpanel").getByRole("button", { name: "End chat" }).click();
  await agent.getByRole("button", { name: `Close tab #${caseId}` }).click();
  await expect(agent.getByRole("tabpanel")).toHaveCount(0);
  await expect(agent).toHaveURL(/\/console\/$/);
  await agent.goto(caseUrl);
  const watched = agent.getByRole("tabpanel");
  await expect(watched).toHaveAttribute("data-case", caseId!);
  await expect(watched.locator(".msg-customer")).toContainText("Where is my order?");

  // Signed out, the case's link asks to sign in first, then opens the case.
  const signedOut = await (await browser.newContext()).newPage();
  await signInAt(signedOut, caseUrl, adminEmail, adminPassword);
  await expect(signedOut.getByRole("tabpanel")).toHaveAttribute("data-case", caseId!);
  await signedOut.context().close();

  // Another agent (not an admin) opens the case read-only, and is told the admin pages
  // are not theirs rather than shown their forms.
  await createAgent(agent.request, { name: "Bea Agent", email: "bea@example.com", password: "bea-password-1" });
  const bea = await (await browser.newContext()).newPage();
  await signInAt(bea, caseUrl, "bea@example.com", "bea-password-1");
  await expect(bea.getByRole("tabpanel")).toHaveAttribute("data-case", caseId!);
  await expect(bea.getByRole("tabpanel").getByRole("textbox", { name: "Message", exact: true })).toBeDisabled();
  for (const page of ["agents", "groups", "macros", "settings", "appearance"]) {
    await bea.goto(`/console/${page}`);
    await expect(bea.getByRole("alert").filter({ hasText: "This page is for admins." })).toBeVisible();
  }
  await expect(bea.getByRole("heading", { name: "Agents" })).toHaveCount(0);
  await bea.context().close();
  await close();
});
