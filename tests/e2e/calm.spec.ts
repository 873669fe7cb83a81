// Clear, calm screens: the waiting list says how long each chat has waited and how it
// began; messages carry their time (the full date on hover), the author once per run
// and the other side's initials.
import { test, expect } from "./fixtures";
import { twoSides, signIn, openWidget, startChat } from "./helpers";

const message = { name: "Message", exact: true } as const;

test("the waiting list shows time waited and the first message; messages show times, initials and the author once per run", async ({ browser }) => {
  const { agent, customer, close } = await twoSides(browser);
  await signIn(agent);

  const widget = await openWidget(customer);
  await startChat(widget, "Grace Hopper", "Order 1042 is late", "Where is my order? It was due Monday.");
  const entry = agent.locator(".waiting-chat").filter({ hasText: "Grace Hopper" });
  await expect(entry.locator(".waiting-first")).toHaveText("Where is my order? It was due Monday.");
  await expect(entry.locator(".waiting-time")).toHaveText(/^\d+ s$/);
  await expect(entry).toContainText("Being offered to an agent");
  const pop = agent.getByRole("alertdialog", { name: "Incoming chat" });
  await expect(pop.getByRole("button", { name: "Disable: routing off" })).toBeVisible();
  await pop.getByRole("button", { name: "Accept" }).click();

  const input = widget.getByRole("textbox", message);
  await input.fill("Order 1042.");
  await input.press("Enter");
  await input.fill("Sent to Paris.");
  await input.press("Enter");
  const caseView = agent.getByRole("tabpanel");
  const customerLines = caseView.locator(".msg-customer");
  await expect(customerLines).toHaveCount(3);
  // One run: the author and initials once, on its first line.
  await expect(customerLines.nth(0).locator(".msg-avatar")).toHaveText("GH");
  await expect(customerLines.nth(0).locator(".msg-author")).toBeVisible();
  await expect(customerLines.nth(2)).toHaveClass(/msg-continued/);
  await expect(customerLines.nth(2).locator(".msg-author")).toBeHidden();
  // Times of day, and the whole date on hover.
  const time = customerLines.nth(2).locator("time.msg-time");
  await expect(time).toHaveText(/^\d\d:\d\d$/);
  await expect(time).toHaveAttribute("title", /\d{4}/);
  await expect(time).toHaveAttribute("datetime", /^\d{4}-\d\d-\d\dT/);
  // The customer sees the agent's initials on the agent's reply.
  await caseView.getByRole("textbox", message).fill("Let me check.");
  await caseView.getByRole("textbox", message).press("Enter");
  await expect(widget.locator(".msg-agent .msg-avatar")).toHaveText("A");
  await close();
});
