// Sessions end where the agent expects: signing out everywhere, or being switched off
// by an admin, takes the agent's consoles to the sign-in page, which says why.
import { test, expect } from "./fixtures";
import { signIn, signInApi, createAgent } from "./helpers";

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

test("an agent switched off by an admin is taken to the sign-in page, told their account was deactivated", async ({ browser, request }) => {
  await signInApi(request);
  await createAgent(request, { name: "Bea Agent", email: "bea@parlor.local", password: "bea-password-1" });
  const bea = await (await browser.newContext()).newPage();
  await signIn(bea, "bea@parlor.local", "bea-password-1");

  const accounts: { id: number; email: string }[] = await (await request.get("/api/agents")).json();
  const id = accounts.find((a) => a.email === "bea@parlor.local")?.id;
  const off = await request.put(`/api/agents/${id}`, {
    data: { name: "Bea Agent", email: "bea@parlor.local", is_admin: false, active: false, capacity: 2, groups: [] },
  });
  expect(off.ok(), await off.text()).toBeTruthy();

  await expect(bea.getByRole("button", { name: "Sign in" })).toBeVisible();
  await expect(bea.locator(".signed-out-note")).toContainText("Your account was deactivated");
  await bea.context().close();
});
