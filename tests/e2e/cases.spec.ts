// The Cases page: filters by where the chat stands, status and words, and new cases
// appear by themselves.
import { test, expect } from "./fixtures";
import { twoSides, signIn, openWidget, startChat, acceptScreenPop } from "./helpers";

test("the Cases page filters by chat, status and words, and shows new cases without a reload", async ({ browser }) => {
  const { agent, customer, close } = await twoSides(browser);
  await signIn(agent);
  const widget = await openWidget(customer);
  await startChat(widget, "Grace Hopper", "Order 1042 is late", "Where is my order?");
  await acceptScreenPop(agent, "Grace Hopper", "Order 1042 is late");
  await agent.getByRole("tabpanel").getByRole("button", { name: "End chat" }).click();
  await expect(widget.locator(".chat-status")).toContainText("Admin ended the chat.");

  await agent.locator(".pages").getByRole("link", { name: "Cases" }).click();
  const rows = agent.locator(".cases-table tbody tr");
  await expect(rows).toHaveCount(1);

  // A second customer starts a chat while the page is open: it appears by itself.
  const second = await (await browser.newContext()).newPage();
  const other = await openWidget(second);
  await startChat(other, "Alan Turing", "Tent pole snapped", "It broke on day one.");
  await expect(rows).toHaveCount(2, { timeout: 20_000 });

  const page = agent.locator(".cases-page");
  await page.getByLabel("Chat").selectOption({ label: "Ended" });
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText("Grace Hopper");
  await page.getByLabel("Chat").selectOption({ label: "Any" });
  await page.getByLabel("Search").fill("tent");
  await page.getByLabel("Search").press("Enter");
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText("Alan Turing");
  await page.getByLabel("Status").selectOption({ label: "Pending" });
  await expect(agent.locator(".cases-empty")).toHaveText("No case matches.");
  await second.context().close();
  await close();
});
