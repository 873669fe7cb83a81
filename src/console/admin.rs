//! Admin pages: agents (role, capacity, groups, active), groups, and routing settings.

use leptos::prelude::*;
use leptos::task::spawn_local;
use parlor_protocol::{
    AgentAccount, AgentInput, ChatSettings, Group, GroupInput, RoutingSettings,
    SystemMessageSetting,
};

use super::http::call;

/// Runs an API call and reports a failure in `problem`; `then` runs on success.
pub(super) fn run<T: 'static>(
    problem: RwSignal<Option<String>>,
    request: impl std::future::Future<Output = Result<T, String>> + 'static,
    then: impl FnOnce(T) + 'static,
) {
    spawn_local(async move {
        match request.await {
            Ok(value) => {
                problem.set(None);
                then(value);
            }
            Err(error) => problem.set(Some(error)),
        }
    });
}

async fn load_groups(groups: RwSignal<Vec<Group>>) -> Result<(), String> {
    groups.set(call::<Vec<Group>>("GET", "/api/groups", None::<&()>).await?);
    Ok(())
}

/// Routing for the chat channel and the screen-pop timeout.
#[component]
pub fn SettingsPage() -> impl IntoView {
    let channel = RwSignal::new(true);
    let timeout = RwSignal::new(String::from("30"));
    let problem = RwSignal::new(None::<String>);
    let saved = RwSignal::new(false);
    // The form takes input once it shows the saved settings: an answer arriving after
    // a click would otherwise undo it.
    let loaded = RwSignal::new(false);
    run(
        problem,
        call::<RoutingSettings>("GET", "/api/settings/routing", None::<&()>),
        move |settings| {
            channel.set(settings.channel_routing);
            timeout.set(settings.screen_pop_timeout_secs.to_string());
            loaded.set(true);
        },
    );
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saved.set(false);
        let Ok(secs) = timeout.get_untracked().trim().parse::<u32>() else {
            problem.set(Some(
                "The screen-pop timeout is a whole number of seconds.".into(),
            ));
            return;
        };
        let settings = RoutingSettings {
            channel_routing: channel.get_untracked(),
            screen_pop_timeout_secs: secs,
        };
        run(
            problem,
            async move {
                call::<RoutingSettings>("PUT", "/api/settings/routing", Some(&settings)).await
            },
            move |_| saved.set(true),
        );
    };
    view! {
        <section class="admin-page settings-page">
            <h2>"Routing"</h2>
            <form class="settings-form routing-settings" on:submit=save>
                <fieldset class="form-body" prop:disabled=move || !loaded.get()>
                <label class="check">
                    <input type="checkbox" name="channel-routing" prop:checked=channel
                        on:change=move |ev| channel.set(event_target_checked(&ev))/>
                    "Route chats to agents (screen pops)"
                </label>
                <p class="hint">"When off, nobody gets screen pops: agents enter waiting chats from the list."</p>
                <label>"Screen-pop timeout (seconds)"
                    <input type="number" name="screen-pop-timeout" min="3" max="600" prop:value=timeout
                        on:input=move |ev| timeout.set(event_target_value(&ev))/>
                </label>
                <p class="hint">"An agent who lets a screen pop run out has their routing switched off; the chat goes to the next agent."</p>
                <p class="form-problem" role="alert">{move || problem.get()}</p>
                <div class="form-actions">
                    <button type="submit" class="primary">"Save settings"</button>
                    <Show when=move || saved.get()><span class="saved" role="status">"Saved."</span></Show>
                </div>
                </fieldset>
            </form>
            <ChatSettingsForm/>
        </section>
    }
}

/// The inactivity timeout, the agent's grace period and Parlor's own chat messages.
#[component]
fn ChatSettingsForm() -> impl IntoView {
    let inactivity = RwSignal::new(String::new());
    let grace = RwSignal::new(String::new());
    let messages = RwSignal::new(Vec::<(
        SystemMessageSetting,
        RwSignal<bool>,
        RwSignal<String>,
    )>::new());
    let problem = RwSignal::new(None::<String>);
    let saved = RwSignal::new(false);
    let loaded = RwSignal::new(false);
    let show = move |settings: ChatSettings| {
        loaded.set(true);
        inactivity.set(settings.inactivity_timeout_secs.to_string());
        grace.set(settings.agent_grace_secs.to_string());
        messages.set(
            settings
                .messages
                .into_iter()
                .map(|m| {
                    let on = RwSignal::new(m.on);
                    let text = RwSignal::new(m.text.clone());
                    (m, on, text)
                })
                .collect(),
        );
    };
    run(
        problem,
        call::<ChatSettings>("GET", "/api/settings/chat", None::<&()>),
        show,
    );
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        saved.set(false);
        let seconds = |value: String, what: &str| {
            value
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("The {what} is a whole number of seconds."))
        };
        let settings =
            seconds(inactivity.get_untracked(), "inactivity timeout").and_then(|inactivity| {
                Ok(ChatSettings {
                    inactivity_timeout_secs: inactivity,
                    agent_grace_secs: seconds(grace.get_untracked(), "grace period")?,
                    messages: messages.with_untracked(|all| {
                        all.iter()
                            .map(|(m, on, text)| SystemMessageSetting {
                                kind: m.kind,
                                on: on.get_untracked(),
                                text: text.get_untracked(),
                            })
                            .collect()
                    }),
                })
            });
        match settings {
            Ok(settings) => run(
                problem,
                async move { call::<ChatSettings>("PUT", "/api/settings/chat", Some(&settings)).await },
                move |fresh| {
                    show(fresh);
                    saved.set(true);
                },
            ),
            Err(error) => problem.set(Some(error)),
        }
    };
    view! {
        <h2>"Chats"</h2>
        <form class="settings-form chat-settings" on:submit=save>
            <fieldset class="form-body" prop:disabled=move || !loaded.get()>
            <label>"Inactivity timeout (seconds)"
                <input type="number" name="inactivity-timeout" min="1" prop:value=inactivity
                    on:input=move |ev| inactivity.set(event_target_value(&ev))/>
            </label>
            <p class="hint">"When the customer closes the window nobody is alerted at once: the chat ends as timed out after this long."</p>
            <label>"Agent grace period (seconds)"
                <input type="number" name="agent-grace" min="1" prop:value=grace
                    on:input=move |ev| grace.set(event_target_value(&ev))/>
            </label>
            <p class="hint">"When an agent's console goes away (closed, offline) for longer than this, their chats go back to the queue."</p>
            <fieldset class="system-messages">
                <legend>"Messages in the chat ({agent} is the agent's name)"</legend>
                {move || messages.get().into_iter().map(|(m, on, text)| {
                    let label = m.kind.label();
                    view! {
                        <div class="system-message">
                            <label class="check">
                                <input type="checkbox" prop:checked=on on:change=move |ev| on.set(event_target_checked(&ev))/>
                                {label}
                            </label>
                            <input aria-label=format!("Text: {label}") prop:value=text
                                on:input=move |ev| text.set(event_target_value(&ev))/>
                        </div>
                    }
                }).collect_view()}
            </fieldset>
            <p class="form-problem" role="alert">{move || problem.get()}</p>
            <div class="form-actions">
                <button type="submit" class="primary">"Save chat settings"</button>
                <Show when=move || saved.get()><span class="saved" role="status">"Saved."</span></Show>
            </div>
            </fieldset>
        </form>
    }
}

/// Groups: create and rename.
#[component]
pub fn GroupsPage() -> impl IntoView {
    let groups = RwSignal::new(Vec::<Group>::new());
    let agents = RwSignal::new(Vec::<AgentAccount>::new());
    let problem = RwSignal::new(None::<String>);
    let saved = RwSignal::new(None::<String>);
    let new_name = RwSignal::new(String::new());
    let reload = move || async move {
        agents.set(call::<Vec<AgentAccount>>("GET", "/api/agents", None::<&()>).await?);
        load_groups(groups).await
    };
    run(problem, reload(), |()| {});
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let input = GroupInput {
            name: new_name.get_untracked(),
        };
        saved.set(None);
        run(
            problem,
            async move {
                let made = call::<Group>("POST", "/api/groups", Some(&input)).await?;
                reload().await.map(|()| made)
            },
            move |made| {
                new_name.set(String::new());
                saved.set(Some(format!("Group {} created.", made.name)));
            },
        );
    };
    let rename = move |id: i64, name: String| {
        let input = GroupInput { name };
        saved.set(None);
        run(
            problem,
            async move {
                let renamed =
                    call::<Group>("PUT", &format!("/api/groups/{id}"), Some(&input)).await?;
                reload().await.map(|()| renamed)
            },
            move |renamed| saved.set(Some(format!("Saved: the group is now {}.", renamed.name))),
        );
    };
    let members = move |id: i64| {
        agents.with(|all| {
            all.iter()
                .filter(|a| a.groups.contains(&id))
                .map(|a| a.name.clone())
                .collect::<Vec<_>>()
        })
    };
    let remove = move |group: Group| {
        let count = members(group.id).len();
        let question = format!(
            "Remove the group {}? Its {count} agent(s) stay, without it. Chats that were for it \
             (waiting or past) are for no group from now on: a waiting one goes to whoever is free.",
            group.name
        );
        if !super::cases::confirmed(&question) {
            return;
        }
        saved.set(None);
        let id = group.id;
        run(
            problem,
            async move {
                call::<()>("DELETE", &format!("/api/groups/{id}"), None::<&()>).await?;
                reload().await
            },
            move |()| saved.set(Some(format!("Group {} removed.", group.name))),
        );
    };
    view! {
        <section class="admin-page groups-page">
            <h2>"Groups"</h2>
            <p class="hint">"A chat for a group is offered to that group's agents first. Agents join groups on the Agents page."</p>
            <ul class="group-list">
                {move || groups.get().into_iter().map(|group| {
                    let name = RwSignal::new(group.name.clone());
                    let id = group.id;
                    let who = members(id);
                    let who = if who.is_empty() { "No members yet".to_owned() } else { format!("Members: {}", who.join(", ")) };
                    let removed = group.clone();
                    view! {
                        <li class="group-row" data-group=group.name.clone()>
                            <input aria-label=format!("Name of group {}", group.name) prop:value=name
                                on:input=move |ev| name.set(event_target_value(&ev))/>
                            <button type="button" on:click=move |_| rename(id, name.get_untracked())>"Rename"</button>
                            <button type="button" class="danger" on:click=move |_| remove(removed.clone())>"Remove"</button>
                            <span class="group-members">{who}</span>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <form class="group-form" on:submit=create>
                <label>"New group"
                    <input name="group-name" prop:value=new_name on:input=move |ev| new_name.set(event_target_value(&ev))/>
                </label>
                <button type="submit" class="primary">"Create group"</button>
            </form>
            <p class="saved" role="status">{move || saved.get()}</p>
            <p class="form-problem" role="alert">{move || problem.get()}</p>
        </section>
    }
}

/// The agent form's fields, as signals.
#[derive(Clone, Copy)]
struct AgentForm {
    editing: RwSignal<Option<i64>>,
    name: RwSignal<String>,
    email: RwSignal<String>,
    password: RwSignal<String>,
    is_admin: RwSignal<bool>,
    active: RwSignal<bool>,
    capacity: RwSignal<String>,
    groups: RwSignal<Vec<i64>>,
}

impl AgentForm {
    fn new() -> Self {
        Self {
            editing: RwSignal::new(None),
            name: RwSignal::new(String::new()),
            email: RwSignal::new(String::new()),
            password: RwSignal::new(String::new()),
            is_admin: RwSignal::new(false),
            active: RwSignal::new(true),
            capacity: RwSignal::new("3".into()),
            groups: RwSignal::new(Vec::new()),
        }
    }

    fn fill(self, account: Option<&AgentAccount>) {
        self.editing.set(account.map(|a| a.id));
        self.name
            .set(account.map(|a| a.name.clone()).unwrap_or_default());
        self.email
            .set(account.map(|a| a.email.clone()).unwrap_or_default());
        self.password.set(String::new());
        self.is_admin.set(account.is_some_and(|a| a.is_admin));
        self.active.set(account.is_none_or(|a| a.active));
        self.capacity
            .set(account.map_or(3, |a| a.capacity).to_string());
        self.groups
            .set(account.map(|a| a.groups.clone()).unwrap_or_default());
    }

    fn input(self) -> Result<AgentInput, String> {
        let capacity = self
            .capacity
            .get_untracked()
            .trim()
            .parse::<u32>()
            .map_err(|_| "Capacity is a whole number of chats.".to_owned())?;
        let password = self.password.get_untracked();
        Ok(AgentInput {
            name: self.name.get_untracked(),
            email: self.email.get_untracked(),
            password: (!password.is_empty()).then_some(password),
            is_admin: self.is_admin.get_untracked(),
            active: self.active.get_untracked(),
            capacity,
            groups: self.groups.get_untracked(),
        })
    }
}

/// Agents: create, edit role, capacity and groups, deactivate.
#[component]
pub fn AgentsPage() -> impl IntoView {
    let agents = RwSignal::new(Vec::<AgentAccount>::new());
    let groups = RwSignal::new(Vec::<Group>::new());
    let problem = RwSignal::new(None::<String>);
    let saved = RwSignal::new(None::<String>);
    let form = AgentForm::new();
    let reload = move || async move {
        agents.set(call::<Vec<AgentAccount>>("GET", "/api/agents", None::<&()>).await?);
        load_groups(groups).await
    };
    run(problem, reload(), |()| {});
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let input = match form.input() {
            Ok(input) => input,
            Err(error) => {
                problem.set(Some(error));
                return;
            }
        };
        let editing = form.editing.get_untracked();
        let name = input.name.clone();
        saved.set(None);
        run(
            problem,
            async move {
                match editing {
                    Some(id) => {
                        call::<AgentAccount>("PUT", &format!("/api/agents/{id}"), Some(&input))
                            .await?
                    }
                    None => call::<AgentAccount>("POST", "/api/agents", Some(&input)).await?,
                };
                reload().await
            },
            move |()| {
                form.fill(None);
                saved.set(Some(format!("Saved {name}.")));
            },
        );
    };
    let remove = move |account: AgentAccount| {
        let question = format!(
            "Remove {}? They are signed out at once and can no longer sign in; chats they are \
             in go back to the queue now (the customers are told they left); their past cases \
             keep their name. Their email can be used for a new account.",
            account.name
        );
        if !super::cases::confirmed(&question) {
            return;
        }
        saved.set(None);
        let id = account.id;
        run(
            problem,
            async move {
                call::<()>("DELETE", &format!("/api/agents/{id}"), None::<&()>).await?;
                reload().await
            },
            move |()| saved.set(Some(format!("{} removed.", account.name))),
        );
    };
    let group_names = move |ids: &[i64]| {
        groups.with(|all| {
            all.iter()
                .filter(|g| ids.contains(&g.id))
                .map(|g| g.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    view! {
        <section class="admin-page agents-page">
            <h2>"Agents"</h2>
            <table class="agents-table">
                <thead><tr><th>"Name"</th><th>"Email"</th><th>"Role"</th><th>"Capacity"</th><th>"Groups"</th><th>"Status"</th><th>"Now"</th><th></th></tr></thead>
                <tbody>
                    {move || agents.get().into_iter().map(|account| {
                        let row = account.clone();
                        let removed = account.clone();
                        view! {
                            <tr data-agent=account.email.clone()>
                                <td>{account.name.clone()}</td>
                                <td>{account.email.clone()}</td>
                                <td>{if account.is_admin { "Admin" } else { "Agent" }}</td>
                                <td>{account.capacity}</td>
                                <td>{group_names(&account.groups)}</td>
                                <td>{if account.active { "Active" } else { "Deactivated" }}</td>
                                <td class=if account.online { "online" } else { "offline" }>
                                    {if account.online { "Online" } else { "Offline" }}
                                </td>
                                <td class="row-actions">
                                    <button type="button" on:click=move |_| form.fill(Some(&row))>"Edit"</button>
                                    <button type="button" class="danger" on:click=move |_| remove(removed.clone())>"Remove"</button>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            <form class="agent-form" on:submit=save>
                <h3>{move || if form.editing.get().is_some() { "Edit agent" } else { "New agent" }}</h3>
                <label>"Name"<input name="agent-name" prop:value=form.name on:input=move |ev| form.name.set(event_target_value(&ev))/></label>
                <label>"Email"<input name="agent-email" type="email" prop:value=form.email on:input=move |ev| form.email.set(event_target_value(&ev))/></label>
                <label>{move || if form.editing.get().is_some() { "New password (leave empty to keep)" } else { "Password" }}
                    <input name="agent-password" type="password" autocomplete="new-password" prop:value=form.password
                        on:input=move |ev| form.password.set(event_target_value(&ev))/>
                </label>
                <label>"Role"
                    <select name="agent-role" prop:value=move || if form.is_admin.get() { "admin" } else { "agent" }
                        on:change=move |ev| form.is_admin.set(event_target_value(&ev) == "admin")>
                        <option value="agent">"Agent"</option>
                        <option value="admin">"Admin"</option>
                    </select>
                </label>
                <label>"Capacity (chats at once)"
                    <input name="agent-capacity" type="number" min="1" max="50" prop:value=form.capacity
                        on:input=move |ev| form.capacity.set(event_target_value(&ev))/>
                </label>
                <fieldset class="agent-groups">
                    <legend>"Groups"</legend>
                    {move || groups.get().into_iter().map(|group| {
                        let id = group.id;
                        view! {
                            <label class="check">
                                <input type="checkbox" prop:checked=move || form.groups.with(|g| g.contains(&id))
                                    on:change=move |ev| {
                                        let on = event_target_checked(&ev);
                                        form.groups.update(|g| {
                                            g.retain(|x| *x != id);
                                            if on { g.push(id); }
                                        });
                                    }/>
                                {group.name}
                            </label>
                        }
                    }).collect_view()}
                </fieldset>
                <label class="check">
                    <input type="checkbox" name="agent-active" prop:checked=form.active
                        on:change=move |ev| form.active.set(event_target_checked(&ev))/>
                    "Active (a deactivated agent is signed out at once)"
                </label>
                <p class="form-problem" role="alert">{move || problem.get()}</p>
                <p class="saved" role="status">{move || saved.get()}</p>
                <div class="form-actions">
                    <button type="submit" class="primary">"Save agent"</button>
                    <Show when=move || form.editing.get().is_some()>
                        <button type="button" on:click=move |_| form.fill(None)>"Cancel"</button>
                    </Show>
                </div>
            </form>
        </section>
    }
}
