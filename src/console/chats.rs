//! The chats page: the waiting list, a tab for each chat the agent is in or watches,
//! and the chat in front with its case fields, offer log, messages and composer.

use leptos::prelude::*;
use leptos::task::spawn_local;
use parlor_protocol::{
    AgentFrame, CaseId, CaseSummary, ChatState, EndedBy, Macro, Millis, OfferClosed, OfferLogEntry,
    flatten_markdown,
};

use super::cases::CaseFields;
use super::http;
use super::macros::MacroPicker;
use super::model::Model;
use crate::components::{Composer, MessageList, TypingLine, Viewer};
use crate::net::{self, Link};

/// The chats page. `send` sends a frame to Parlor; `open_case` brings a case to the
/// front by its URL.
#[component]
pub fn ChatsPage(
    model: Model,
    send: Callback<AgentFrame>,
    open_case: Callback<CaseId>,
) -> impl IntoView {
    let send = move |frame: AgentFrame| send.run(frame);
    let tab_list = move || {
        model.tabs.with(|tabs| {
            tabs.iter()
                .map(|tab| {
                    let id = tab.case.id;
                    let unread = tab.unread;
                    let label = format!("#{id} {}", tab.case.customer_name);
                    let state = if tab.read_only { "Read-only" } else { tab_state(&tab.case) };
                    view! {
                        <div class="case-tab-wrap" data-case=id>
                            <button type="button" role="tab" class="case-tab"
                                aria-selected=move || (model.selected.get() == Some(id)).to_string()
                                on:click=move |_| open_case.run(id)>
                                <span class="case-tab-label">{label}</span>
                                <span class="case-tab-state">{state}</span>
                                {unread.then(|| view! { <span class="red-dot" role="img" aria-label="Unread message"></span> })}
                            </button>
                            <button type="button" class="case-tab-close" aria-label=format!("Close tab #{id}")
                                on:click=move |_| send(AgentFrame::CloseTab { case_id: id })>"×"</button>
                        </div>
                    }
                })
                .collect_view()
        })
    };

    let waiting_list = move || {
        let chats = model.waiting.get();
        if chats.is_empty() {
            return view! { <p class="waiting-empty">"No chat is waiting."</p> }.into_any();
        }
        view! {
            <ul class="waiting-list">
                {chats.into_iter().map(|waiting| {
                    let id = waiting.case.id;
                    let group = waiting.case.group.clone().map(|g| format!(" · {g}")).unwrap_or_default();
                    let since = waiting.case.created_at;
                    view! {
                        <li class="waiting-chat" data-case=id>
                            <div>
                                <strong>{format!("#{} {}", waiting.position, waiting.case.customer_name)}</strong>
                                <span class="waiting-time">{move || waited(since, model.now.get())}</span>
                                <span class="waiting-subject">{format!("{}{group}", waiting.case.subject)}</span>
                                <span class="waiting-first">{waiting.first_message.clone()}</span>
                                {waiting.case.customer_left_at.is_some().then(|| view! {
                                    <span class="waiting-left">"Customer left: not offered until they are back"</span>
                                })}
                                {waiting.offered.then(|| view! { <span class="waiting-offered">"Being offered to an agent"</span> })}
                            </div>
                            <button type="button" on:click=move |_| send(AgentFrame::Accept { case_id: id })>"Enter"</button>
                        </li>
                    }
                }).collect_view()}
            </ul>
        }
        .into_any()
    };

    // The case view is rebuilt only when another tab comes to the front, so the
    // composer keeps its focus while messages arrive.
    let selected = Memo::new(move |_| model.selected.get());
    let case_view = move || {
        let id = selected.get()?;
        let (draft, refusal) = model.tabs.with_untracked(|tabs| {
            tabs.iter()
                .find(|t| t.case.id == id)
                .map(|t| (t.draft, t.refusal))
        })?;
        let case = Memo::new(move |_| {
            model.tabs.with(|tabs| {
                tabs.iter()
                    .find(|t| t.case.id == id)
                    .map(|t| t.case.clone())
            })
        });
        let transcript = Signal::derive(move || {
            model.tabs.with(|tabs| {
                tabs.iter()
                    .find(|t| t.case.id == id)
                    .map(|t| t.transcript.clone())
                    .unwrap_or_default()
            })
        });
        let state = move || case.with(|c| c.as_ref().map(|c| c.state));
        let me = model
            .me
            .with_untracked(|m| m.as_ref().map(|m| m.id))
            .unwrap_or_default();
        let read_only = model
            .tabs
            .with_untracked(|tabs| tabs.iter().any(|t| t.case.id == id && t.read_only));
        let live = Signal::derive(move || {
            !read_only && model.link.get() == Link::Open && state() == Some(ChatState::Active)
        });
        let typing = move || {
            let now = model.now.get();
            model
                .tabs
                .with(|tabs| tabs.iter().any(|t| t.case.id == id && t.typing_until > now))
        };
        let on_send = Callback::new(move |body: String| {
            let client_id = net::client_id();
            model.tabs.update(|tabs| {
                if let Some(tab) = tabs.iter_mut().find(|t| t.case.id == id) {
                    tab.transcript.add_pending(client_id.clone(), body.clone());
                }
            });
            send(AgentFrame::Send {
                case_id: id,
                client_id,
                body,
            });
        });
        let on_typing = Callback::new(move |()| send(AgentFrame::Typing { case_id: id }));
        let input = NodeRef::new();
        let on_pick = Callback::new(move |chosen: Macro| {
            let text = flatten_markdown(&chosen.body);
            draft.update(|d| {
                if !d.is_empty() && !d.ends_with(' ') {
                    d.push(' ');
                }
                d.push_str(&text);
            });
            if let Some(input) = input.get_untracked() {
                let input: web_sys::HtmlTextAreaElement = input;
                let _ = input.focus();
            }
        });
        Some(view! {
            <section class="case" role="tabpanel" data-case=id>
                <header class="case-header">
                    <div>
                        <h2 class="case-subject">{move || case.with(|c| c.as_ref().map(|c| c.subject.clone()))}</h2>
                        <p class="case-meta">
                            {move || case.with(|c| c.as_ref().map(|c| format!("Case #{id} · {}", c.customer_name)))}
                        </p>
                        {move || case.with(|c| c.as_ref().map(customer_answers))}
                    </div>
                    {read_only.then(|| view! { <span class="read-only-badge">"Read-only: the customer does not know you are here"</span> })}
                    <Show when=move || !read_only && state() == Some(ChatState::Active)>
                        <button type="button" class="end-chat"
                            on:click=move |_| send(AgentFrame::EndChat { case_id: id })>"End chat"</button>
                    </Show>
                </header>
                {move || case.get().map(|c| {
                    let locked = read_only && c.state != ChatState::Ended;
                    view! {
                        <CaseFields case=c groups=model.groups locked=locked
                            on_update=Callback::new(send)/>
                    }
                })}
                <OfferLog case_id=id/>
                <p class="customer-left" role="status">
                    {move || {
                        let now = model.now.get();
                        case.with(|c| c.as_ref().and_then(|c| left_line(c, now)))
                    }}
                </p>
                <Show when=move || state() == Some(ChatState::Ended)>
                    <p class="chat-status" role="status">
                        {move || case.with(|c| c.as_ref().map(ended_line))}
                    </p>
                </Show>
                <MessageList
                    transcript=transcript
                    viewer=Viewer::Agent(me)
                    on_earlier=Callback::new(move |before| send(AgentFrame::LoadEarlier { case_id: id, before }))
                />
                <TypingLine who=Signal::derive(move || typing().then(|| "The customer".to_owned()))/>
                <Composer draft=draft on_send=on_send on_typing=on_typing enabled=live input=input problem=refusal
                    placeholder="Type a reply — Enter sends, Shift+Enter for a new line">
                    <MacroPicker macros=model.macros on_pick=on_pick/>
                </Composer>
            </section>
        })
    };

    view! {
                        <aside class="waiting" aria-label="Waiting chats">
                            <h2>{move || format!("Waiting ({})", model.waiting_total.get())}</h2>
                            {waiting_list}
                        </aside>
                        <div class="work">
                            <nav class="case-tabs" role="tablist" aria-label="Chats">{tab_list}</nav>
                            {move || match case_view() {
                                Some(view) => view.into_any(),
                                None => view! {
                                    <section class="case case-empty">
                                        <p>"No chat open. With routing on, incoming chats pop up here; you can also enter a waiting chat from the list."</p>
                                    </section>
                                }.into_any(),
                            }}
                        </div>
    }
}

fn outcome_text(entry: &OfferLogEntry) -> &'static str {
    match entry.outcome {
        None => "on screen",
        Some(OfferClosed::Accepted) => "accepted",
        Some(OfferClosed::Disabled) => "disabled",
        Some(OfferClosed::TimedOut) => "timed out",
        Some(OfferClosed::Abandoned) => "abandoned by the customer",
        Some(OfferClosed::Withdrawn) => "withdrawn",
    }
}

fn clock(ms: i64) -> String {
    js_sys::Date::new(&(ms as f64).into())
        .to_locale_time_string("en-GB")
        .as_string()
        .unwrap_or_default()
}

/// Who the chat was offered to, when, and how each screen pop ended; read when opened.
#[component]
fn OfferLog(case_id: CaseId) -> impl IntoView {
    let entries = RwSignal::new(None::<Result<Vec<OfferLogEntry>, String>>);
    let load = move |ev: leptos::ev::Event| {
        let open = event_target::<web_sys::HtmlDetailsElement>(&ev).open();
        if open {
            spawn_local(async move {
                let url = format!("/api/cases/{case_id}/offers");
                entries.set(Some(
                    http::call::<Vec<OfferLogEntry>>("GET", &url, None::<&()>).await,
                ));
            });
        }
    };
    view! {
        <details class="offer-log" on:toggle=load>
            <summary>"Offer log"</summary>
            {move || match entries.get() {
                None => view! { <p>"Loading…"</p> }.into_any(),
                Some(Err(error)) => view! { <p class="form-problem">{error}</p> }.into_any(),
                Some(Ok(list)) if list.is_empty() => view! { <p>"Never offered: entered from the list."</p> }.into_any(),
                Some(Ok(list)) => view! {
                    <ol class="offer-log-list">
                        {list.into_iter().map(|entry| view! {
                            <li>{format!("{} · offered {} · {}", entry.agent_name, clock(entry.offered_at), outcome_text(&entry))}</li>
                        }).collect_view()}
                    </ol>
                }.into_any(),
            }}
        </details>
    }
}

fn tab_state(case: &CaseSummary) -> &'static str {
    match case.state {
        ChatState::Ended => "Ended",
        _ if case.customer_left_at.is_some() => "Customer left",
        ChatState::Queued => "Waiting",
        ChatState::Active => "Live",
    }
}

/// Seconds from `since` to `now` (epoch ms).
fn seconds_since(since: Millis, now: f64) -> u64 {
    ((now - since as f64) / 1000.0).max(0.0) as u64
}

/// A span of time as the console says it: "45 s", "2 min", "1 h 5 min".
fn span(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs / 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

/// How long a chat has waited, for the waiting list.
fn waited(since: Millis, now: f64) -> String {
    span(seconds_since(since, now))
}

/// How long ago `at` was, for "left 3 min ago".
fn ago(at: Millis, now: f64) -> String {
    match seconds_since(at, now) {
        0..=59 => "just now".to_owned(),
        secs => format!("{} ago", span(secs)),
    }
}

/// The line a live chat's tab shows while its customer has gone.
fn left_line(case: &CaseSummary, now: f64) -> Option<String> {
    let at = case
        .customer_left_at
        .filter(|_| case.state != ChatState::Ended)?;
    Some(format!(
        "The customer left {}: their window is closed. The chat goes on if they come back, \
         and ends by itself if they do not.",
        ago(at, now)
    ))
}

/// What the customer told the pre-chat form beyond name and subject.
fn customer_answers(case: &parlor_protocol::CaseSummary) -> impl IntoView + use<> {
    let email = case.customer_email.clone().map(|email| {
        view! { <dt>"Email"</dt><dd>{email}</dd> }
    });
    let answers = case
        .answers
        .iter()
        .map(|a| view! { <dt>{a.label.clone()}</dt><dd>{a.value.clone()}</dd> })
        .collect_view();
    (email.is_some() || !case.answers.is_empty())
        .then(|| view! { <dl class="case-answers">{email}{answers}</dl> })
}

fn ended_line(case: &CaseSummary) -> String {
    match &case.ended_by {
        Some(EndedBy::Customer) => "The customer ended the chat.".to_owned(),
        Some(EndedBy::Agent { name }) => format!("{name} ended the chat."),
        Some(EndedBy::Timeout) => "The chat timed out: the customer went away.".to_owned(),
        None => "The chat has ended.".to_owned(),
    }
}
