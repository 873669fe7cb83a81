//! Cases: the fields of the case in a tab (status, subject, group) with Update and the
//! Close tab box, and the list of recent chat cases, any of which opens read-only.

use leptos::prelude::*;
use leptos::task::spawn_local;
use parlor_protocol::{
    AgentFrame, CASES_PAGE, CaseChat, CaseFilter, CaseId, CaseStatus, CaseSummary, ChatState,
    EndedBy, Group,
};

use super::http::call;

/// The case fields under a case tab. **Update** saves them; with **Close tab** checked
/// the tab closes too (for a live chat: the customer is told and the chat is queued
/// again). Resolving a live chat places the customer back in the queue.
#[component]
pub fn CaseFields(
    case: CaseSummary,
    #[prop(into)] groups: Signal<Vec<Group>>,
    /// Read-only: a watcher's view of a chat another agent is in, while it is live.
    locked: bool,
    on_update: Callback<AgentFrame>,
) -> impl IntoView {
    let case_id = case.id;
    let status = RwSignal::new(case.status);
    let subject = RwSignal::new(case.subject.clone());
    let group_name = case.group.clone();
    let group = RwSignal::new(groups.with_untracked(|all| {
        all.iter()
            .find(|g| Some(&g.name) == group_name.as_ref())
            .map(|g| g.id)
    }));
    // While the customer is there, closing the tab puts them back in the queue: the box
    // starts unchecked then, and checked once the chat has ended (the help desk kept it
    // checked, and warned agents to uncheck it before updating a live case).
    let live = case.state == ChatState::Active;
    let close_tab = RwSignal::new(case.state == ChatState::Ended);
    let update = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (status, close) = (status.get_untracked(), close_tab.get_untracked());
        if let Some(question) = requeue_question(live, status, close)
            && !confirmed(question)
        {
            return;
        }
        on_update.run(AgentFrame::UpdateCase {
            case_id,
            status,
            subject: subject.get_untracked(),
            group: group.get_untracked(),
            close_tab: close,
        });
    };
    view! {
        <form class="case-fields" on:submit=update aria-label="Case fields">
            <fieldset class="form-body" disabled=locked
                title=locked.then_some("Only the agent in the chat can change the case while it is live.")>
            <label>"Status"
                <select name="case-status"
                    on:change=move |ev| {
                        let value = event_target_value(&ev);
                        if let Some(s) = CaseStatus::ALL.into_iter().find(|s| s.label() == value) {
                            status.set(s);
                        }
                    }>
                    {CaseStatus::ALL.into_iter().map(|s| view! {
                        <option value=s.label() selected=move || status.get() == s>{s.label()}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>"Subject"
                <input name="case-subject" prop:value=subject on:input=move |ev| subject.set(event_target_value(&ev))/>
            </label>
            <label>"Group"
                <select name="case-group" on:change=move |ev| group.set(event_target_value(&ev).parse().ok())>
                    <option value="" selected=move || group.get().is_none()>"None"</option>
                    {move || groups.get().into_iter().map(|g| {
                        let id = g.id;
                        view! { <option value=id.to_string() selected=move || group.get() == Some(id)>{g.name}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label class="check">
                <input type="checkbox" name="close-tab" prop:checked=close_tab
                    on:change=move |ev| close_tab.set(event_target_checked(&ev))/>
                "Close tab"
            </label>
            <button type="submit">"Update"</button>
            </fieldset>
        </form>
    }
}

/// What to ask before an Update that would put a live customer back in the queue.
fn requeue_question(live: bool, status: CaseStatus, close_tab: bool) -> Option<&'static str> {
    match (live, close_tab, status) {
        (false, _, _) => None,
        (true, true, _) => Some(
            "Close the tab of this live chat? The customer is told you left and goes back in the queue.",
        ),
        (true, false, CaseStatus::Resolved) => {
            Some("Resolve this live chat? The customer is told they were placed back in the queue.")
        }
        (true, false, _) => None,
    }
}

/// The browser's own yes/no question: modal, keyboard-reachable, read by screen readers.
pub(super) fn confirmed(question: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.confirm_with_message(question).ok())
        .unwrap_or(false)
}

fn chat_line(case: &CaseSummary) -> String {
    if case.channel == parlor_protocol::Channel::Message {
        return match &case.customer_email {
            Some(email) => format!("Message left (answer to {email})"),
            None => "Message left".into(),
        };
    }
    match (&case.state, &case.ended_by, &case.agent_name) {
        (ChatState::Queued, _, _) => "Waiting".into(),
        (ChatState::Active, _, Some(agent)) => format!("Live with {agent}"),
        (ChatState::Active, _, None) => "Live".into(),
        (ChatState::Ended, Some(EndedBy::Customer), None) => "Abandoned in the queue".into(),
        (ChatState::Ended, Some(EndedBy::Customer), Some(_)) => "Ended by the customer".into(),
        (ChatState::Ended, Some(EndedBy::Agent { name }), _) => format!("Ended by {name}"),
        (ChatState::Ended, Some(EndedBy::Timeout), _) => "Timed out".into(),
        (ChatState::Ended, None, _) => "Ended".into(),
    }
}

/// A unit enum's name on the wire, as serde writes it.
fn wire_name(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value)
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned()
}

/// A filter's query string, for `GET /api/cases`.
fn query(filter: &CaseFilter) -> String {
    let mut parts = Vec::new();
    if let Some(status) = filter.status {
        parts.push(format!("status={}", wire_name(&status)));
    }
    if let Some(chat) = filter.chat {
        parts.push(format!("chat={}", wire_name(&chat)));
    }
    if let Some(q) = filter.q.as_deref().filter(|q| !q.trim().is_empty()) {
        parts.push(format!("q={}", js_sys::encode_uri_component(q.trim())));
    }
    if let Some(before) = filter.before {
        parts.push(format!("before={before}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// How often the Cases page reads its first page again while it is open.
const CASES_REFRESH_MS: u32 = 10_000;

/// Chat cases, newest first, a page at a time, narrowed by status, where the chat
/// stands and words from the customer or subject; **Open** shows one read-only, whole
/// transcript included. The first page refreshes by itself every few seconds.
#[component]
pub fn CasesPage(on_open: Callback<CaseId>) -> impl IntoView {
    let filter = RwSignal::new(CaseFilter::default());
    let cases = RwSignal::new(None::<Result<Vec<CaseSummary>, String>>);
    // The shown list ends here and there may be more (a full page came).
    let more = RwSignal::new(false);
    let load = move |older: bool| {
        let mut asked = filter.get_untracked();
        asked.before = if older {
            cases.with_untracked(|c| {
                c.as_ref()
                    .and_then(|c| c.as_ref().ok()?.last().map(|c| c.id))
            })
        } else {
            None
        };
        spawn_local(async move {
            let page = call::<Vec<CaseSummary>>(
                "GET",
                &format!("/api/cases{}", query(&asked)),
                None::<&()>,
            )
            .await;
            if let Ok(page) = &page {
                more.set(page.len() == CASES_PAGE);
            }
            match (older, page) {
                (true, Ok(page)) => cases.update(|c| {
                    if let Some(Ok(list)) = c {
                        list.extend(page);
                    }
                }),
                (_, page) => cases.set(Some(page)),
            }
        });
    };
    load(false);
    // Live: the first page again every few seconds, unless older pages are shown.
    let paged = move || {
        cases.with_untracked(|c| {
            c.as_ref()
                .is_some_and(|c| c.as_ref().is_ok_and(|l| l.len() > CASES_PAGE))
        })
    };
    let refresh = gloo::timers::callback::Interval::new(CASES_REFRESH_MS, move || {
        if !paged() {
            load(false);
        }
    });
    // Kept by the page: dropped (and so stopped) when the page goes.
    StoredValue::new_local(refresh);
    let set = move |change: &dyn Fn(&mut CaseFilter)| {
        filter.update(|f| change(f));
        load(false);
    };
    view! {
        <section class="admin-page cases-page">
            <h2>"Cases"</h2>
            <form class="case-filters" role="search" on:submit=move |ev| { ev.prevent_default(); load(false); }>
                <label>"Search"
                    <input type="search" name="q" placeholder="Customer, email or subject" maxlength="100"
                        on:change=move |ev| { let q = event_target_value(&ev); set(&|f| f.q = Some(q.clone())); }/>
                </label>
                <label>"Status"
                    <select name="status" on:change=move |ev| {
                        let value = event_target_value(&ev);
                        let status = CaseStatus::ALL.into_iter().find(|s| s.label() == value);
                        set(&|f| f.status = status);
                    }>
                        <option value="">"Any"</option>
                        {CaseStatus::ALL.into_iter().map(|s| view! { <option value=s.label()>{s.label()}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Chat"
                    <select name="chat" on:change=move |ev| {
                        let chat = match event_target_value(&ev).as_str() {
                            "waiting" => Some(CaseChat::Waiting),
                            "live" => Some(CaseChat::Live),
                            "ended" => Some(CaseChat::Ended),
                            "message" => Some(CaseChat::Message),
                            _ => None,
                        };
                        set(&|f| f.chat = chat);
                    }>
                        <option value="">"Any"</option>
                        <option value="waiting">"Waiting"</option>
                        <option value="live">"Live"</option>
                        <option value="ended">"Ended"</option>
                        <option value="message">"Message left"</option>
                    </select>
                </label>
            </form>
            {move || match cases.get() {
                None => view! { <p>"Loading…"</p> }.into_any(),
                Some(Err(error)) => view! { <p class="form-problem" role="alert">{error}</p> }.into_any(),
                Some(Ok(list)) if list.is_empty() => view! { <p class="cases-empty">"No case matches."</p> }.into_any(),
                Some(Ok(list)) => view! {
                    <table class="cases-table">
                        <thead><tr><th>"Case"</th><th>"Customer"</th><th>"Subject"</th><th>"Status"</th><th>"Chat"</th><th></th></tr></thead>
                        <tbody>
                            {list.into_iter().map(|case| {
                                let id = case.id;
                                view! {
                                    <tr data-case=id>
                                        <td>{format!("#{id}")}</td>
                                        <td>{case.customer_name.clone()}</td>
                                        <td>{case.subject.clone()}</td>
                                        <td>{case.status.label()}</td>
                                        <td>{chat_line(&case)}</td>
                                        <td><button type="button" on:click=move |_| on_open.run(id)>"Open"</button></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            }}
            <Show when=move || more.get()>
                <button type="button" class="cases-older" on:click=move |_| load(true)>"Older cases"</button>
            </Show>
        </section>
    }
}
