// Customers who have gone: the agent sees "customer left" live, a chat put back in the
// queue while its customer is gone waits marked and pops nobody up, and it is offered
// again the moment the customer is back.
import { test, expect } from "./fixtures";
import { twoSides, signIn, openWidget, startChat, acceptScreenPop } from "./helpers";

test("the console shows a customer leaving and coming back, and a gone customer's chat pops nobody up", async ({ browser }) => {
  const { agent, customer, close } = await twoSides(browser);
  await signIn(agent);
  const widget = await openWidget(customer);
  await startChat(widget, "Grace Hopper", "Order 1042 is late", "Where is my order?");
  await acceptScreenPop(agent, "Grace Hopper", "Order 1042 is late");
  const tab = agent.getByRole("tab", { name: /Grace Hopper/ });
  const caseView = agent.getByRole("tabpanel");
  await expect(tab).toContainText("Live");

  // The customer closes the window: the tab says so at once, not at the timeout.
  const context = customer.context();
  await customer.close();
  await expect(tab).toContainText("Customer left");
  await expect(caseView.locator(".customer-left")).toContainText("The customer left just now");

  // Back on the site: the marker goes.
  const back = await context.newPage();
  await back.goto("/demo");
  const again = back.frameLocator('iframe[title="Chat with us"]');
  await expect(again.locator(".chat-status")).toContainText("You are chatting with Admin");
  await expect(tab).toContainText("Live");
  await expect(caseView.locator(".customer-left")).toBeEmpty();

  // Gone again, and the agent closes the tab: the chat waits, marked, with no screen pop.
  await back.close();
  await expect(tab).toContainText("Customer left");
  await tab.locator("..").getByRole("button", { name: /Close tab/ }).click();
  const waiting = agent.locator(".waiting-chat").filter({ hasText: "Grace Hopper" });
  await expect(waiting).toContainText("Customer left: not offered until they are back");
  const pop = agent.getByRole("alertdialog", { name: "Incoming chat" });
  await expect(pop).toBeHidden();
  await expect(agent.getByRole("switch")).toBeChecked();

  // The customer comes back: the chat is offered again.
  const third = await context.newPage();
  await third.goto("/demo");
  await expect(pop).toBeVisible();
  await expect(pop.locator(".pop-customer")).toHaveText("Grace Hopper");
  await expect(waiting).not.toContainText("Customer left");
  await close();
});
