//! The Appearance page: how the widget looks and what its pre-chat form asks, which sites
//! may embed it, a live preview of the panel, and the embed snippet to copy.

use std::cell::{Cell, RefCell};

use leptos::html;
use leptos::prelude::*;
use parlor_protocol::{CustomField, FieldRule, Side, WidgetSettings};
use wasm_bindgen::JsCast;

use super::admin::run;
use super::http::call;

thread_local! {
    // Whether the Appearance page holds edits not saved yet.
    static UNSAVED: Cell<bool> = const { Cell::new(false) };
    // Those edits, kept while the page is left without a question (Back, Forward) until
    // the agent says whether to lose them.
    static KEPT: RefCell<Option<Kept>> = const { RefCell::new(None) };
    // The browser's warning before the tab closes, once listening.
    static WARNS: Cell<bool> = const { Cell::new(false) };
}

/// Unsaved edits: the draft, the allowed sites as typed, and what is saved.
struct Kept {
    draft: WidgetSettings,
    origins: String,
    stored: WidgetSettings,
}

/// Whether unsaved edits are waiting (the page may already be gone: Back left it).
pub fn unsaved() -> bool {
    UNSAVED.with(Cell::get)
}

/// Whether the agent may leave the current page: yes, unless the Appearance page has
/// unsaved edits and they answer that they want to stay.
pub fn may_leave() -> bool {
    if !UNSAVED.with(Cell::get) {
        return true;
    }
    let leave = super::cases::confirmed(
        "The appearance has changes that are not saved. Leave the page and lose them?",
    );
    if leave {
        UNSAVED.with(|u| u.set(false));
        KEPT.with_borrow_mut(|kept| *kept = None);
    }
    leave
}

/// Asks the browser to warn before the tab closes or reloads while edits are unsaved.
fn warn_before_unload() {
    let Some(window) = web_sys::window() else {
        return;
    };
    if WARNS.with(|w| w.replace(true)) {
        return;
    }
    // For the page's whole life.
    gloo::events::EventListener::new(&window, "beforeunload", |ev| {
        if UNSAVED.with(Cell::get) {
            ev.prevent_default();
            if let Some(ev) = ev.dyn_ref::<web_sys::BeforeUnloadEvent>() {
                ev.set_return_value("unsaved");
            }
        }
    })
    .forget();
}

/// A select of hidden / optional / required for one field of the form.
#[component]
fn RuleSelect(
    label: &'static str,
    draft: RwSignal<WidgetSettings>,
    get: fn(&WidgetSettings) -> FieldRule,
    set: fn(&mut WidgetSettings, FieldRule),
) -> impl IntoView {
    view! {
        <label>
            {label}
            <select on:change=move |ev| {
                let chosen = FieldRule::ALL
                    .into_iter()
                    .find(|r| r.label() == event_target_value(&ev));
                if let Some(rule) = chosen {
                    draft.update(|d| set(d, rule));
                }
            }>
                {FieldRule::ALL.into_iter().map(|rule| view! {
                    <option value=rule.label() selected=move || draft.with(|d| get(d) == rule)>{rule.label()}</option>
                }).collect_view()}
            </select>
        </label>
    }
}

/// Sends the draft to the preview panel (same origin: the widget listens for Parlor's
/// own origin only).
fn show_in_preview(frame: &web_sys::HtmlIFrameElement, settings: &WidgetSettings) {
    let (Some(window), Some(origin)) = (
        frame.content_window(),
        web_sys::window().and_then(|w| w.location().origin().ok()),
    ) else {
        return;
    };
    let message = serde_json::json!({ "parlor": "preview", "settings": settings }).to_string();
    if let Ok(message) = js_sys::JSON::parse(&message) {
        let _ = window.post_message(&message, &origin);
    }
}

fn snippet() -> String {
    let origin = web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default();
    format!("<script async src=\"{origin}/widget.js\"></script>")
}

#[component]
pub fn AppearancePage() -> impl IntoView {
    let draft = RwSignal::new(WidgetSettings::default());
    let origins = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let saved = RwSignal::new(false);
    let copied = RwSignal::new(false);
    let preview = NodeRef::<html::Iframe>::new();
    // The form takes input once it shows the saved settings: an answer arriving after
    // the admin typed would otherwise undo what they typed.
    let loaded = RwSignal::new(false);
    // What is saved, to tell unsaved edits by.
    let stored = RwSignal::new(None::<WidgetSettings>);
    let show = move |settings: WidgetSettings| {
        loaded.set(true);
        origins.set(settings.allowed_origins.join("\n"));
        stored.set(Some(settings.clone()));
        draft.set(settings);
    };
    warn_before_unload();
    Effect::new(move || {
        let unsaved = stored.with(|stored| {
            stored.as_ref().is_some_and(|stored| {
                draft.with(|d| {
                    let mut d = d.clone();
                    d.allowed_origins = stored.allowed_origins.clone();
                    &d != stored
                }) || origins.with(|o| *o != stored.allowed_origins.join("\n"))
            })
        });
        UNSAVED.with(|u| u.set(unsaved));
        let kept = unsaved
            .then(|| {
                Some(Kept {
                    draft: draft.get_untracked(),
                    origins: origins.get_untracked(),
                    stored: stored.get_untracked()?,
                })
            })
            .flatten();
        KEPT.with_borrow_mut(|k| *k = kept);
    });
    // Back with unsaved edits, and the agent chose to stay: the edits come back.
    match KEPT.with_borrow_mut(Option::take) {
        Some(kept) => {
            loaded.set(true);
            origins.set(kept.origins);
            stored.set(Some(kept.stored));
            draft.set(kept.draft);
        }
        None => run(
            problem,
            call::<WidgetSettings>("GET", "/api/settings/widget", None::<&()>),
            show,
        ),
    }
    Effect::new(move || {
        let settings = draft.get();
        if let Some(frame) = preview.get() {
            show_in_preview(&frame, &settings);
        }
    });
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saved.set(false);
        let mut settings = draft.get_untracked();
        settings.allowed_origins = origins
            .get_untracked()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        // The same check the server runs: a clear message before the round trip.
        if let Err(error) = settings.clone().checked() {
            problem.set(Some(error.message));
            return;
        }
        // What the form held when the save left: edits made while it is on its way
        // (Enter in a field saves, and the admin goes on) stay, and stay unsaved.
        let sent = (draft.get_untracked(), origins.get_untracked());
        run(
            problem,
            async move { call::<WidgetSettings>("PUT", "/api/settings/widget", Some(&settings)).await },
            move |fresh| {
                // (try_: the page may be gone by the time the answer comes.)
                let untouched = draft.try_with_untracked(|d| *d == sent.0) == Some(true)
                    && origins.try_with_untracked(|o| *o == sent.1) == Some(true);
                if untouched {
                    show(fresh);
                } else {
                    stored.set(Some(fresh));
                }
                saved.set(true);
            },
        );
    };
    let copy = move |_| {
        if let Some(window) = web_sys::window() {
            let _ = window.navigator().clipboard().write_text(&snippet());
            copied.set(true);
        }
    };
    let text = move |get: fn(&WidgetSettings) -> String| move || draft.with(get);
    let add_question = move |_| {
        draft.update(|d| {
            let n = d.fields.custom.len() + 1;
            d.fields.custom.push(CustomField {
                key: format!("question_{n}"),
                label: format!("Question {n}"),
                required: false,
            });
        });
    };
    view! {
        <section class="admin-page appearance-page">
            <h2>"Appearance"</h2>
            <div class="appearance">
                <form class="settings-form widget-settings" on:submit=save>
                    <fieldset class="form-body" prop:disabled=move || !loaded.get()>
                    <label>"Title"
                        <input name="widget-title" prop:value=text(|d| d.title.clone())
                            on:input=move |ev| draft.update(|d| d.title = event_target_value(&ev))/>
                    </label>
                    <label>"Greeting"
                        <textarea name="widget-greeting" rows="2" prop:value=text(|d| d.greeting.clone())
                            on:input=move |ev| draft.update(|d| d.greeting = event_target_value(&ev))></textarea>
                    </label>
                    <div class="row">
                        <label>"Brand colour"
                            <span class="colour-pick">
                                <input type="color" name="widget-color" prop:value=text(|d| d.brand_color.clone())
                                    on:input=move |ev| draft.update(|d| d.brand_color = event_target_value(&ev))/>
                                <input name="widget-color-hex" aria-label="Brand colour as hex" class="colour-hex"
                                    maxlength="7" spellcheck="false" prop:value=text(|d| d.brand_color.clone())
                                    on:change=move |ev| draft.update(|d| d.brand_color = event_target_value(&ev).trim().to_owned())/>
                            </span>
                        </label>
                        <label>"Position"
                            <select name="widget-position" on:change=move |ev| draft.update(|d| {
                                d.position = if event_target_value(&ev) == "left" { Side::Left } else { Side::Right };
                            })>
                                <option value="right" selected=move || draft.with(|d| d.position == Side::Right)>"Bottom right"</option>
                                <option value="left" selected=move || draft.with(|d| d.position == Side::Left)>"Bottom left"</option>
                            </select>
                        </label>
                    </div>
                    <fieldset class="prechat-fields">
                        <legend>"Pre-chat form (the first message is always asked for)"</legend>
                        <RuleSelect label="Name" draft=draft get=|d| d.fields.name set=|d, r| d.fields.name = r/>
                        <RuleSelect label="Email" draft=draft get=|d| d.fields.email set=|d, r| d.fields.email = r/>
                        <RuleSelect label="Subject" draft=draft get=|d| d.fields.subject set=|d, r| d.fields.subject = r/>
                        <RuleSelect label="Group" draft=draft get=|d| d.fields.group set=|d, r| d.fields.group = r/>
                        {move || questions(draft.with(|d| d.fields.custom.len()), draft)}
                        <button type="button" on:click=add_question>"Add a question"</button>
                    </fieldset>
                    <label class="check">
                        <input type="checkbox" name="queue-when-offline"
                            prop:checked=move || draft.with(|d| d.queue_when_offline)
                            on:change=move |ev| draft.update(|d| d.queue_when_offline = event_target_checked(&ev))/>
                        "Queue chats even when no agent is available"
                    </label>
                    <p class="hint">"Otherwise, while nobody is signed in with routing on, the widget offers a message form instead, and each message becomes a case."</p>
                    <label>"Allowed sites (one origin per line; empty: any site)"
                        <textarea name="allowed-origins" rows="3" placeholder="https://shop.example.com"
                            prop:value=origins on:input=move |ev| origins.set(event_target_value(&ev))></textarea>
                    </label>
                    <p class="hint">"Other sites cannot show the chat: the browser refuses to frame it there, and the loader says so in the page's console."</p>
                    <p class="form-problem" role="alert">{move || problem.get()}</p>
                    <div class="form-actions">
                        <button type="submit" class="primary">"Save appearance"</button>
                        <Show when=move || saved.get()><span class="saved" role="status">"Saved."</span></Show>
                    </div>
                    </fieldset>
                </form>
                <div class="appearance-side">
                    <h3>"Preview"</h3>
                    <div class="preview-stage" data-side=move || if draft.with(|d| d.position == Side::Left) { "left" } else { "right" }>
                        <iframe class="widget-preview" title="Widget preview" src="/widget/#preview=1" node_ref=preview
                            on:load=move |_| {
                                if let Some(frame) = preview.get_untracked() {
                                    show_in_preview(&frame, &draft.get_untracked());
                                }
                            }></iframe>
                        <span class="preview-launcher" role="img" aria-label="The launcher on your site"
                            style:background-color=text(|d| d.brand_color.clone())>"💬"</span>
                    </div>
                    <h3>"Embed"</h3>
                    <p class="hint">"Put this tag on every page of your site, just before </body>:"</p>
                    <pre class="embed-snippet">{snippet()}</pre>
                    <button type="button" on:click=copy>{move || if copied.get() { "Copied" } else { "Copy" }}</button>
                </div>
            </div>
        </section>
    }
}

/// The admin's own questions, one row each: label, key, required, remove.
fn questions(count: usize, draft: RwSignal<WidgetSettings>) -> AnyView {
    (0..count)
            .map(|i| {
                let field = move |get: fn(&CustomField) -> String| {
                    move || draft.with(|d| d.fields.custom.get(i).map(get).unwrap_or_default())
                };
                let edit = move |change: fn(&mut CustomField, String), ev: leptos::ev::Event| {
                    let value = event_target_value(&ev);
                    draft.update(|d| {
                        if let Some(f) = d.fields.custom.get_mut(i) {
                            change(f, value);
                        }
                    });
                };
                view! {
                    <div class="custom-question">
                        <label class="question-label">"Question"
                            <input prop:value=field(|f| f.label.clone())
                                on:input=move |ev| edit(|f, v| f.label = v, ev)/>
                        </label>
                        <label class="question-key">"Key (for reports)"
                            <input prop:value=field(|f| f.key.clone())
                                on:input=move |ev| edit(|f, v| f.key = v, ev)/>
                        </label>
                        <label class="check">
                            <input type="checkbox"
                                prop:checked=move || draft.with(|d| d.fields.custom.get(i).is_some_and(|f| f.required))
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    draft.update(|d| {
                                        if let Some(f) = d.fields.custom.get_mut(i) {
                                            f.required = on;
                                        }
                                    });
                                }/>
                            "Required"
                        </label>
                        <button type="button" aria-label="Remove question"
                            on:click=move |_| draft.update(|d| {
                                if i < d.fields.custom.len() {
                                    d.fields.custom.remove(i);
                                }
                            })>"✕"</button>
                    </div>
                }
            })
            .collect_view()
            .into_any()
}
