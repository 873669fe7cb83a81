use leptos::prelude::*;
use parlor_protocol::Offer;

/// A chat routed to me: Accept, Disable, the countdown, and the drop-down with where the
/// customer is, the subject, the group and when the case was created.
#[component]
pub fn ScreenPop(
    offer: Offer,
    /// Seconds left, counted down locally from the server's remaining time.
    #[prop(into)]
    seconds_left: Signal<u64>,
    /// The customer closed their window while this screen pop was up.
    #[prop(into)]
    customer_left: Signal<bool>,
    on_accept: Callback<()>,
    on_disable: Callback<()>,
) -> impl IntoView {
    let (open, set_open) = signal(false);
    let created = js_sys::Date::new(&(offer.created_at as f64).into())
        .to_locale_time_string("en-GB")
        .as_string()
        .unwrap_or_default();
    let group = offer.group.clone().unwrap_or_else(|| "None".to_owned());
    view! {
        <section class="screen-pop" role="alertdialog" aria-label="Incoming chat">
            <div class="pop-head">
                <button type="button" class="pop-toggle" aria-label="Details"
                    aria-expanded=move || open.get().to_string()
                    on:click=move |_| set_open.update(|o| *o = !*o)>
                    {move || if open.get() { "▾" } else { "▸" }}
                </button>
                <span class="pop-countdown" title="Seconds left to accept">{seconds_left}</span>
                <div class="pop-summary">
                    <strong class="pop-customer">{offer.customer_name.clone()}</strong>
                    <span class="pop-subject">{offer.subject.clone()}</span>
                </div>
                <button type="button" class="primary pop-accept" on:click=move |_| on_accept.run(())>"Accept"</button>
                <button type="button" class="pop-disable" title="Decline this chat and switch your routing off"
                    on:click=move |_| on_disable.run(())>"Disable: routing off"</button>
            </div>
            <Show when=move || customer_left.get()>
                <p class="pop-left" role="status">
                    "The customer left while this was up. Ignoring it will not switch your routing off."
                </p>
            </Show>
            <Show when=move || open.get()>
                <dl class="pop-details">
                    <dt>"Location"</dt><dd>{offer.location.clone()}</dd>
                    <dt>"Subject"</dt><dd>{offer.subject.clone()}</dd>
                    <dt>"Group"</dt><dd>{group.clone()}</dd>
                    <dt>"Created"</dt><dd>{created.clone()}</dd>
                </dl>
            </Show>
        </section>
    }
}
