//! Macros in the console: the admin page that keeps them, and the picker in the
//! composer that inserts one, flattened to a single line.

use leptos::html::Input;
use leptos::prelude::*;
use leptos::task::spawn_local;
use parlor_protocol::{Macro, MacroInput, flatten_markdown};
use web_sys::KeyboardEvent;

use super::http::call;

/// Fetches the macros again.
pub async fn reload(macros: RwSignal<Vec<Macro>>) -> Result<(), String> {
    let list = call::<Vec<Macro>>("GET", "/api/macros", None::<&()>).await?;
    macros.set(list);
    Ok(())
}

/// The macros whose name or text contains the query, ignoring case.
fn matching(macros: &[Macro], query: &str) -> Vec<Macro> {
    let query = query.trim().to_lowercase();
    macros
        .iter()
        .filter(|m| {
            m.name.to_lowercase().contains(&query) || m.body.to_lowercase().contains(&query)
        })
        .cloned()
        .collect()
}

/// A searchable list of macros, used from the keyboard (arrows, Enter, Escape) or the mouse.
#[component]
pub fn MacroPicker(
    #[prop(into)] macros: Signal<Vec<Macro>>,
    /// Called with the chosen macro.
    on_pick: Callback<Macro>,
) -> impl IntoView {
    let (open, set_open) = signal(false);
    let (query, set_query) = signal(String::new());
    let (active, set_active) = signal(0_usize);
    let found = Memo::new(move |_| macros.with(|all| query.with(|q| matching(all, q))));
    let search = NodeRef::<Input>::new();
    Effect::new(move |_| {
        if let Some(input) = search.get() {
            let _ = input.focus();
        }
    });
    let close = move || {
        set_open.set(false);
        set_query.set(String::new());
        set_active.set(0);
    };
    let choose = move |chosen: Macro| {
        close();
        on_pick.run(chosen);
    };
    let on_keydown = move |ev: KeyboardEvent| match ev.key().as_str() {
        "ArrowDown" => {
            ev.prevent_default();
            let last = found.with(Vec::len).saturating_sub(1);
            set_active.update(|i| *i = (*i + 1).min(last));
        }
        "ArrowUp" => {
            ev.prevent_default();
            set_active.update(|i| *i = i.saturating_sub(1));
        }
        "Enter" => {
            ev.prevent_default();
            if let Some(chosen) = found.with(|f| f.get(active.get_untracked()).cloned()) {
                choose(chosen);
            }
        }
        "Escape" => {
            ev.prevent_default();
            close();
        }
        _ => {}
    };
    view! {
        <div class="macro-picker">
            <button type="button" class="macro-button" aria-haspopup="listbox"
                aria-expanded=move || open.get().to_string()
                on:click=move |_| if open.get_untracked() { close() } else { set_open.set(true) }>
                "Macros"
            </button>
            <Show when=move || open.get()>
                <div class="macro-popover" role="dialog" aria-label="Insert a macro">
                    <input type="search" aria-label="Search macros" placeholder="Search macros"
                        node_ref=search prop:value=query
                        on:input=move |ev| { set_query.set(event_target_value(&ev)); set_active.set(0); }
                        on:keydown=on_keydown/>
                    <ul role="listbox" aria-label="Macros" class="macro-list">
                        {move || found.get().into_iter().enumerate().map(|(i, m)| {
                            let preview = flatten_markdown(&m.body);
                            let name = m.name.clone();
                            view! {
                                <li role="option" class="macro-option"
                                    aria-selected=move || (active.get() == i).to_string()
                                    on:mousedown=|ev| ev.prevent_default()
                                    on:click=move |_| choose(m.clone())>
                                    <strong>{name}</strong>
                                    <span class="macro-preview">{preview}</span>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                    <Show when=move || found.with(Vec::is_empty)>
                        <p class="macro-empty">"No macro matches."</p>
                    </Show>
                </div>
            </Show>
        </div>
    }
}

/// The admin page for macros: list, create, edit, delete, with a preview of how each
/// reads in chat.
#[component]
pub fn MacrosPage(macros: RwSignal<Vec<Macro>>) -> impl IntoView {
    let editing = RwSignal::new(None::<i64>);
    let name = RwSignal::new(String::new());
    let body = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let reset = move || {
        editing.set(None);
        name.set(String::new());
        body.set(String::new());
        problem.set(None);
    };
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let input = MacroInput {
            name: name.get_untracked(),
            body: body.get_untracked(),
        };
        let id = editing.get_untracked();
        spawn_local(async move {
            let saved = match id {
                Some(id) => call::<Macro>("PUT", &format!("/api/macros/{id}"), Some(&input)).await,
                None => call::<Macro>("POST", "/api/macros", Some(&input)).await,
            };
            match saved.and(Ok(())) {
                Ok(()) => {
                    reset();
                    if let Err(error) = reload(macros).await {
                        problem.set(Some(error));
                    }
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    };
    let delete = move |id: i64| {
        spawn_local(async move {
            match call::<()>("DELETE", &format!("/api/macros/{id}"), None::<&()>).await {
                Ok(()) => {
                    if editing.get_untracked() == Some(id) {
                        reset();
                    }
                    if let Err(error) = reload(macros).await {
                        problem.set(Some(error));
                    }
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    };
    let edit = move |m: Macro| {
        editing.set(Some(m.id));
        name.set(m.name);
        body.set(m.body);
        problem.set(None);
    };
    view! {
        <section class="admin-page macros-page">
            <h2>"Macros"</h2>
            <p class="hint">"Write macros in Markdown. In chat a macro is put on one line; Liquid variables such as {{customer.first_name}} are filled in when the message is sent."</p>
            <ul class="macro-admin-list">
                {move || macros.get().into_iter().map(|m| {
                    let id = m.id;
                    let preview = flatten_markdown(&m.body);
                    let label = m.name.clone();
                    view! {
                        <li class="macro-row">
                            <div>
                                <strong>{label}</strong>
                                <span class="macro-preview">{preview}</span>
                            </div>
                            <button type="button" on:click=move |_| edit(m.clone())>"Edit"</button>
                            <button type="button" on:click=move |_| delete(id)>"Delete"</button>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <form class="macro-form" on:submit=save>
                <h3>{move || if editing.get().is_some() { "Edit macro" } else { "New macro" }}</h3>
                <label>"Name"
                    <input name="macro-name" prop:value=name on:input=move |ev| name.set(event_target_value(&ev))/>
                </label>
                <label>"Text (Markdown)"
                    <textarea name="macro-body" rows="6" prop:value=body
                        on:input=move |ev| body.set(event_target_value(&ev))></textarea>
                </label>
                <p class="macro-preview-line">"In chat: " {move || body.with(|b| flatten_markdown(b))}</p>
                <p class="form-problem" role="alert">{move || problem.get()}</p>
                <div class="form-actions">
                    <button type="submit" class="primary">"Save macro"</button>
                    <Show when=move || editing.get().is_some()>
                        <button type="button" on:click=move |_| reset()>"Cancel"</button>
                    </Show>
                </div>
            </form>
        </section>
    }
}
