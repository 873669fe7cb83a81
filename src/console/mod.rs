//! The agent console: sign in, the top bar (pages, routing switch, alerts), screen
//! pops, and the page the URL names: the chats (`chats.rs`) or one of the others (a
//! module each). The state they share is `model.rs`.

mod admin;
mod alerts;
mod appearance;
mod cases;
mod chats;
mod http;
mod login;
mod macros;
mod model;
mod screen_pop;

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::hooks::{use_location, use_navigate};
use leptos_router::{NavigateOptions, path};
use parlor_protocol::{AgentFrame, AgentProfile, CaseId, Group, RoutingSwitch};

use crate::net::{self, Handlers, Link, Socket};
use login::LoginForm;
use macros::MacrosPage;
use model::{Model, NOTICE_DISABLED, NOTICE_IGNORED, SESSION_ENDED};
use screen_pop::ScreenPop;

/// The console's pages, each at its own URL (so the back button, a reload and a link
/// to a case work): `/console/` for the chats, `/console/cases/42` for the chats with
/// case 42 in front (a link to a case), and `/console/cases`, `/console/macros`, … for
/// the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Page {
    Chats,
    Cases,
    Macros,
    Agents,
    Groups,
    Settings,
    Appearance,
}

impl Page {
    const ADMIN: [Page; 5] = [
        Page::Macros,
        Page::Agents,
        Page::Groups,
        Page::Settings,
        Page::Appearance,
    ];

    fn path(self) -> &'static str {
        match self {
            Page::Chats => "/console/",
            Page::Cases => "/console/cases",
            Page::Macros => "/console/macros",
            Page::Agents => "/console/agents",
            Page::Groups => "/console/groups",
            Page::Settings => "/console/settings",
            Page::Appearance => "/console/appearance",
        }
    }

    /// The page at `path`, and the case it puts in front (the chats with a case).
    /// Anything else is the chats.
    fn at(path: &str) -> (Page, Option<CaseId>) {
        let path = path.trim_end_matches('/');
        if let Some(id) = path.strip_prefix("/console/cases/") {
            return (Page::Chats, id.parse().ok());
        }
        let page = [Page::Cases]
            .into_iter()
            .chain(Page::ADMIN)
            .find(|page| page.path() == path)
            .unwrap_or(Page::Chats);
        (page, None)
    }

    fn title(self) -> &'static str {
        match self {
            Page::Chats => "Chats",
            Page::Cases => "Cases",
            Page::Macros => "Macros",
            Page::Agents => "Agents",
            Page::Groups => "Groups",
            Page::Settings => "Settings",
            Page::Appearance => "Appearance",
        }
    }
}
/// The URL of the chats with case `id` in front.
fn case_path(id: CaseId) -> String {
    format!("/console/cases/{id}")
}

/// An admin page, by its URL. Anyone else is told whose page it is rather than shown
/// forms the API would refuse.
#[component]
fn ForAdmins(me: RwSignal<Option<AgentProfile>>, children: ChildrenFn) -> impl IntoView {
    view! {
        <Show when=move || me.with(|m| m.as_ref().is_some_and(|m| m.is_admin))
            fallback=|| view! { <p class="page-refused" role="alert">"This page is for admins."</p> }>
            {children()}
        </Show>
    }
}

/// A link in the pages bar. Leaving the Appearance page with unsaved edits asks first.
#[component]
fn PageLink(page: Page, current: Memo<Page>) -> impl IntoView {
    view! {
        <a href=page.path() aria-current=move || (current.get() == page).then_some("page")
            on:click=move |ev| {
                if current.get_untracked() != page && !appearance::may_leave() {
                    ev.prevent_default();
                }
            }>
            {page.title()}
        </a>
    }
}

/// The console, its pages routed by URL.
#[component]
pub fn Console() -> impl IntoView {
    view! { <Router><ConsoleApp/></Router> }
}

#[component]
fn ConsoleApp() -> impl IntoView {
    let model = Model::new();
    let (checked, set_checked) = signal(false);
    let socket = StoredValue::new_local(None::<Socket>);
    let now = model.now;
    let _ = set_interval_with_handle(move || now.set(net::now_ms()), Duration::from_millis(250));

    let connect = move || {
        if socket.with_value(Option::is_some) {
            return;
        }
        let link = Socket::connect(
            "/ws/agent",
            Handlers {
                on_open: Box::new(move |s| model.hello(s)),
                on_frame: Box::new(move |s, text| model.on_frame(s, text)),
                on_link: Box::new(move |link| {
                    // Open is shown when the server's welcome arrives.
                    if link != Link::Open {
                        model.link.set(link);
                    }
                    // A console whose session ended (signed out elsewhere, a new
                    // password, deactivated, expired) is closed by Parlor: say so on the
                    // sign-in page rather than reconnecting forever.
                    if link == Link::Reconnecting {
                        spawn_local(async {
                            if http::session_ended().await {
                                login::signed_out(SESSION_ENDED);
                            }
                        });
                    }
                }),
                // Parlor says why it closed the socket for good.
                on_ended: Some(Box::new(|code| {
                    login::signed_out(if code == parlor_protocol::CLOSE_ACCOUNT_OFF {
                        "Your account was deactivated. Ask an admin if that is a mistake."
                    } else {
                        SESSION_ENDED
                    });
                })),
            },
        );
        socket.set_value(Some(link));
        spawn_local(async move {
            if let Err(error) = macros::reload(model.macros).await {
                model.notice.set(Some(error));
            }
            match http::call::<Vec<Group>>("GET", "/api/groups", None::<&()>).await {
                Ok(groups) => model.groups.set(groups),
                Err(error) => model.notice.set(Some(error)),
            }
        });
    };
    let send = move |frame: AgentFrame| {
        let sent = socket.with_value(|s| s.as_ref().is_some_and(|s| s.send(&frame)));
        if !sent {
            model.notice.set(Some(
                "Not connected to Parlor; try again in a moment.".to_owned(),
            ));
        }
    };

    // Bumped when sound or notifications are allowed, so the top bar can update. The
    // first click or key anywhere (signing in, say) allows sound.
    let alerts_on = RwSignal::new(0_u32);
    alerts::unlock_on_first_gesture(move || alerts_on.update(|n| *n += 1));

    // The window title counts chats with an unread customer message.
    Effect::new(move |_| {
        let unread = model
            .tabs
            .with(|tabs| tabs.iter().filter(|t| t.unread).count());
        alerts::rest_title(if unread > 0 {
            format!("({unread}) {}", alerts::TITLE)
        } else {
            alerts::TITLE.to_owned()
        });
    });

    // The URL says which page shows, and which case is in front on the chats page.
    let location = use_location();
    let navigate = use_navigate();
    let route = Memo::new(move |_| location.pathname.with(|path| Page::at(path)));
    let page = Memo::new(move |_| route.get().0);
    // A link to a case puts it in front: its tab if the agent has one, else it is
    // watched (read-only) once the console is connected. Asked once per visit to the
    // link, so closing the tab does not bring it back.
    let asked = StoredValue::new(None::<CaseId>);
    Effect::new(move |before: Option<Option<CaseId>>| {
        let case = route.get().1;
        let connected = model.link.get() == Link::Open;
        if before != Some(case) {
            asked.set_value(None);
        }
        if let Some(id) = case {
            if model
                .tabs
                .with_untracked(|tabs| tabs.iter().any(|t| t.case.id == id))
            {
                if model.selected.get_untracked() != Some(id) {
                    model.select(id);
                }
            } else if connected && asked.get_value() != Some(id) {
                asked.set_value(Some(id));
                send(AgentFrame::Watch { case_id: id });
            }
        }
        case
    });
    // What Parlor brings to the front, the URL shows (in place of the entry it had).
    Effect::new({
        let navigate = navigate.clone();
        move |first: Option<()>| {
            let front = model.to_front.get();
            let (page, shown) = route.get_untracked();
            if first.is_some() && page == Page::Chats && front != shown {
                let path = front.map_or_else(|| Page::Chats.path().to_owned(), case_path);
                let replace = NavigateOptions {
                    replace: true,
                    ..NavigateOptions::default()
                };
                navigate(&path, replace);
            }
        }
    });
    // Leaving the Appearance page some other way than its link (Back, Forward) with
    // unsaved edits asks too; staying brings the page and its edits back.
    Effect::new({
        let navigate = navigate.clone();
        move |before: Option<Page>| {
            let now = page.get();
            if before == Some(Page::Appearance)
                && now != Page::Appearance
                && appearance::unsaved()
                && !appearance::may_leave()
            {
                navigate(Page::Appearance.path(), NavigateOptions::default());
            }
            now
        }
    });
    let open_case = Callback::new({
        let navigate = navigate.clone();
        move |id: CaseId| navigate(&case_path(id), NavigateOptions::default())
    });

    // A notice of why routing went off goes once it is on again: it is no longer true.
    Effect::new(move |_| {
        if model.routing.with(RoutingSwitch::shown)
            && model.notice.with_untracked(|n| {
                n.as_deref()
                    .is_some_and(|n| n == NOTICE_IGNORED || n == NOTICE_DISABLED)
            })
        {
            model.notice.set(None);
        }
    });

    // While a screen pop is up the title flashes and the tab's icon has a badge.
    Effect::new(move |_| {
        model.offer.with(|shown| match shown {
            Some(shown) => {
                alerts::call_attention(&format!("Incoming chat: {}", shown.offer.customer_name));
            }
            None => alerts::calm(),
        });
    });

    // Already signed in (the session cookie)? Then straight to work.
    spawn_local(async move {
        if let Ok(agent) = http::call::<AgentProfile>("GET", "/api/me", None::<&()>).await {
            model.me.set(Some(agent));
            connect();
        }
        set_checked.set(true);
    });
    let on_signed_in = Callback::new(move |agent: AgentProfile| {
        model.me.set(Some(agent));
        connect();
    });
    let sign_out = move |everywhere: bool| {
        spawn_local(async move {
            let url = if everywhere {
                "/api/logout/everywhere"
            } else {
                "/api/logout"
            };
            let _ = http::call::<()>("POST", url, None::<&()>).await;
            if let Some(window) = web_sys::window() {
                let _ = window.location().reload();
            }
        });
    };

    let seconds_left = Signal::derive(move || {
        let deadline = model
            .offer
            .with(|o| o.as_ref().map(|o| o.deadline))
            .unwrap_or(0.0);
        ((deadline - now.get()) / 1000.0).ceil().max(0.0) as u64
    });
    let screen_pop = move || {
        model.offer.get().map(|shown| {
            let case_id = shown.offer.case_id;
            view! {
                <ScreenPop
                    offer=shown.offer
                    seconds_left=seconds_left
                    customer_left=Signal::derive(move || model.waiting.with(|chats| {
                        chats.iter().any(|w| w.case.id == case_id && w.case.customer_left_at.is_some())
                    }))
                    on_accept=Callback::new(move |()| send(AgentFrame::Accept { case_id }))
                    on_disable=Callback::new(move |()| send(AgentFrame::Disable { case_id }))
                />
            }
        })
    };

    view! {
        <Show when=move || checked.get() fallback=|| view! { <p class="loading">"Loading…"</p> }>
            <Show
                when=move || model.me.with(Option::is_some)
                fallback=move || view! { <LoginForm on_signed_in=on_signed_in/> }
            >
                <div class="console">
                    <header class="topbar">
                        <strong class="brand">"Parlor"</strong>
                        <nav class="pages" aria-label="Console pages">
                            <PageLink page=Page::Chats current=page/>
                            <PageLink page=Page::Cases current=page/>
                            <Show when=move || model.me.with(|m| m.as_ref().is_some_and(|m| m.is_admin))>
                                {Page::ADMIN.into_iter().map(|to| view! { <PageLink page=to current=page/> }).collect_view()}
                            </Show>
                        </nav>
                        <label class="routing-switch">
                            <input type="checkbox" role="switch" name="routing"
                                prop:checked=move || model.routing.with(RoutingSwitch::shown)
                                aria-busy=move || model.routing.with(RoutingSwitch::is_pending).then_some("true")
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    model.routing.update(|s| s.click(on));
                                    // Not connected now: the next welcome sends it.
                                    socket.with_value(|s| {
                                        s.as_ref().map(|s| s.send(&AgentFrame::SetRouting { on }))
                                    });
                                }/>
                            <span>{move || if model.routing.with(RoutingSwitch::shown) { "Routing on" } else { "Routing off" }}</span>
                        </label>
                        <Show when=move || !model.channel_routing.get()>
                            <span class="channel-off" role="status"
                                title="An admin switched screen pops off for the whole chat channel: nobody gets them until it is back on. Take chats from the waiting list meanwhile.">
                                ", paused for everyone: take chats from the waiting list"
                            </span>
                        </Show>
                        <span class="link-state" data-link=move || format!("{:?}", model.link.get()).to_lowercase()>
                            {move || match model.link.get() {
                                Link::Open => "Connected",
                                Link::Connecting => "Connecting…",
                                Link::Reconnecting => "Reconnecting…",
                            }}
                        </span>
                        {move || {
                            alerts_on.track();
                            let label = if !alerts::sound_on() {
                                "Enable alerts"
                            } else if alerts::notifications_askable() {
                                "Turn on notifications"
                            } else {
                                return None;
                            };
                            Some(view! {
                                <button type="button" class="enable-alerts"
                                    title="A sound and desktop notifications for screen pops and new messages"
                                    on:click=move |_| {
                                        let asked = alerts::enable();
                                        spawn_local(async move {
                                            if let Some(answer) = asked {
                                                let _ = wasm_bindgen_futures::JsFuture::from(answer).await;
                                            }
                                            alerts_on.update(|n| *n += 1);
                                        });
                                    }>
                                    {label}
                                </button>
                            })
                        }}
                        <span class="me">{move || model.me.with(|m| m.as_ref().map(|m| m.name.clone()))}</span>
                        <button type="button" class="sign-out" on:click=move |_| sign_out(false)>"Sign out"</button>
                        <button type="button" class="sign-out-everywhere" title="Sign out on every browser and device"
                            on:click=move |_| sign_out(true)>"Sign out everywhere"</button>
                    </header>
                    <Show when=move || model.notice.get().is_some()>
                        <p class="notice" role="alert">
                            {move || model.notice.get()}
                            <button type="button" class="notice-close" aria-label="Dismiss"
                                on:click=move |_| model.notice.set(None)>"✕"</button>
                        </p>
                    </Show>
                    // Said aloud as it comes: the pop itself is not focused (it would take
                    // the caret from someone typing), so a live region announces it.
                    <p class="sr-only" role="status" aria-live="assertive">
                        {move || model.offer.with(|o| o.as_ref().map(|o| format!(
                            "Incoming chat from {}: {}. Accept or Disable.", o.offer.customer_name, o.offer.subject
                        )))}
                    </p>
                    {screen_pop}
                    // The chats stay on the page (hidden) while another shows, so a draft
                    // keeps its caret and a transcript its place.
                    <Routes fallback=|| ()>
                        <Route path=path!("/console/cases") view=move || view! { <cases::CasesPage on_open=open_case/> }/>
                        <Route path=path!("/console/macros") view=move || view! { <ForAdmins me=model.me><MacrosPage macros=model.macros/></ForAdmins> }/>
                        <Route path=path!("/console/agents") view=move || view! { <ForAdmins me=model.me><admin::AgentsPage/></ForAdmins> }/>
                        <Route path=path!("/console/groups") view=move || view! { <ForAdmins me=model.me><admin::GroupsPage/></ForAdmins> }/>
                        <Route path=path!("/console/settings") view=move || view! { <ForAdmins me=model.me><admin::SettingsPage/></ForAdmins> }/>
                        <Route path=path!("/console/appearance") view=move || view! { <ForAdmins me=model.me><appearance::AppearancePage/></ForAdmins> }/>
                    </Routes>
                    <div class="chats" class:hidden=move || page.get() != Page::Chats>
                        <chats::ChatsPage model=model send=Callback::new(send) open_case=open_case/>
                    </div>
                </div>
            </Show>
        </Show>
    }
}
