// Sessions end where the agent expects: signing out everywhere takes every other
// console of theirs to the sign-in page, which says why.
import { test, expect } from "./fixtures";
import { signIn } from "./helpers";

test("signing out everywhere takes the agent's other consoles to the sign-in page, saying why", async ({ browser }) => {
  const laptop = await (await browser.newContext()).newPage();
  const phone = await (await browser.newContext()).newPage();
  await signIn(laptop);
  await signIn(phone);

  await phone.getByRole("button", { name: "Sign out everywhere" }).click();
  await expect(phone.getByRole("button", { name: "Sign in" })).toBeVisible();
  await expect(laptop.getByRole("button", { name: "Sign in" })).toBeVisible();
  await expect(laptop.locator(".signed-out-note")).toContainText("You were signed out");
  // The note is said once: a reload shows the plain sign-in page.
  await laptop.reload();
  await expect(laptop.getByRole("button", { name: "Sign in" })).toBeVisible();
  await expect(laptop.locator(".signed-out-note")).toHaveCount(0);
  await laptop.context().close();
  await phone.context().close();
});
