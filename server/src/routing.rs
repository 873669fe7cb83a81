//! The routing engine: which agent is offered which waiting chat, and what happens when
//! they accept, press Disable or let the countdown run out.
//!
//! It is a pure state machine: [`Engine::handle`] takes an event and the current time
//! and returns decisions; it does no I/O and reads no clock. The async shell in
//! `dispatch` feeds it events from sockets and timers and carries out its decisions.

use std::collections::BTreeMap;

use parlor_protocol::{AgentId, CaseId, GroupId, Millis, OfferClosed, RoutingChange};
use serde::{Deserialize, Serialize};

/// Something that happened, as far as routing cares. Serializable: with several nodes,
/// the leader hears other nodes' events over the bus.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Event {
    /// A console of this agent connected. `load` is the number of chats they are in.
    AgentConnected {
        agent: AgentId,
        routing: bool,
        capacity: u32,
        load: u32,
        groups: Vec<GroupId>,
    },
    /// An admin changed the agent's capacity or groups.
    AgentUpdated {
        agent: AgentId,
        capacity: u32,
        groups: Vec<GroupId>,
    },
    /// The agent's account was deactivated: all their consoles are gone at once.
    AgentRemoved {
        agent: AgentId,
    },
    /// The admin's switch for routing on the chat channel as a whole.
    ChannelRouting {
        on: bool,
    },
    /// A console of this agent went away.
    AgentDisconnected {
        agent: AgentId,
    },
    /// The agent flipped their routing switch.
    RoutingSwitched {
        agent: AgentId,
        on: bool,
    },
    /// A chat is waiting for an agent. `offer` is a screen pop that was open when the
    /// server stopped, restored with its stored deadline; `away` is whether its customer
    /// has gone (no widget of theirs is open).
    ChatQueued {
        case: CaseId,
        group: Option<GroupId>,
        offer: Option<(AgentId, Millis)>,
        away: bool,
    },
    /// The customer of a chat closed their last widget (`here: false`) or opened one
    /// again. A waiting chat whose customer has gone keeps its place but is offered to
    /// nobody until they are back (or its inactivity timeout ends it).
    CustomerPresence {
        case: CaseId,
        here: bool,
    },
    Accept {
        agent: AgentId,
        case: CaseId,
    },
    Disable {
        agent: AgentId,
        case: CaseId,
    },
    /// A waiting chat left the queue without an agent (the customer ended it).
    ChatLeft {
        case: CaseId,
    },
    /// A chat an agent was in ended: a place frees up.
    ChatClosed {
        agent: AgentId,
        case: CaseId,
    },
    /// Time passed; deadlines up to now are due.
    Tick,
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Show a screen pop to `agent`, closing itself at `expires_at`.
    Offer {
        case: CaseId,
        agent: AgentId,
        expires_at: Millis,
    },
    /// Take the screen pop for `case` off `agent`'s screen.
    OfferClosed {
        case: CaseId,
        agent: AgentId,
        reason: OfferClosed,
    },
    /// Switch `agent`'s routing off and tell them why.
    RoutingOff {
        agent: AgentId,
        change: RoutingChange,
    },
    /// Put `agent` in the chat.
    Assign { case: CaseId, agent: AgentId },
    /// `agent` asked for `case` and cannot have it.
    Refuse {
        case: CaseId,
        agent: AgentId,
        refusal: Refusal,
    },
}

/// Why an agent cannot enter a chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Another agent has it, or it ended.
    NotWaiting,
    /// It is on another agent's screen pop.
    OfferedToAnother,
    /// The agent is in as many chats as their capacity allows.
    AtCapacity,
    /// Routing counts no console of the agent (yet).
    NotConnected,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Self::NotWaiting => {
                "This chat is no longer waiting: another agent took it or it ended."
            }
            Self::OfferedToAnother => "This chat is being offered to another agent.",
            Self::AtCapacity => "You are in as many chats as your capacity allows.",
            Self::NotConnected => "Parlor is catching up with your console; try again in a moment.",
        }
    }
}

#[derive(Clone, Debug)]
struct Agent {
    connections: u32,
    routing: bool,
    capacity: u32,
    load: u32,
    groups: Vec<GroupId>,
    /// When the agent last got or finished a chat: the longest idle is offered first.
    idle_since: Millis,
}

impl Agent {
    /// Whether a screen pop may go to this agent (leaving aside other screen pops).
    fn available(&self) -> bool {
        self.connections > 0 && self.routing && self.load < self.capacity
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Offered {
    agent: AgentId,
    expires_at: Millis,
}

#[derive(Clone, Debug)]
struct Waiting {
    case: CaseId,
    group: Option<GroupId>,
    offer: Option<Offered>,
    /// The customer has gone: no screen pop for it until they are back.
    away: bool,
}

/// A waiting chat as the waiting list shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queued {
    pub case: CaseId,
    /// A screen pop for it is on some agent's screen.
    pub offered: bool,
    /// Its customer has gone.
    pub away: bool,
}

/// Routing state: the agents who are connected and the chats waiting, in arrival order.
#[derive(Clone, Debug)]
pub struct Engine {
    agents: BTreeMap<AgentId, Agent>,
    queue: Vec<Waiting>,
    offer_timeout_ms: Millis,
    /// Routing on for the channel as a whole; when off, nobody gets screen pops.
    channel_on: bool,
}

impl Engine {
    pub fn new(offer_timeout_ms: Millis, channel_on: bool) -> Self {
        Self {
            agents: BTreeMap::new(),
            queue: Vec::new(),
            offer_timeout_ms: offer_timeout_ms.max(1),
            channel_on,
        }
    }

    pub fn channel_on(&self) -> bool {
        self.channel_on
    }

    /// The waiting chats in queue order.
    pub fn waiting(&self) -> impl Iterator<Item = Queued> + '_ {
        self.queue.iter().map(|w| Queued {
            case: w.case,
            offered: w.offer.is_some(),
            away: w.away,
        })
    }

    /// The admin's screen-pop timeout, for offers made from now on.
    pub fn set_offer_timeout(&mut self, offer_timeout_ms: Millis) {
        self.offer_timeout_ms = offer_timeout_ms.max(1);
    }

    /// When the next offer runs out, if any is open: the shell sends `Tick` then.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.queue
            .iter()
            .filter_map(|w| w.offer.map(|o| o.expires_at))
            .min()
    }

    /// The open screen pop of `agent`: (case, expires_at).
    pub fn offer_of(&self, agent: AgentId) -> Option<(CaseId, Millis)> {
        self.queue.iter().find_map(|w| match w.offer {
            Some(o) if o.agent == agent => Some((w.case, o.expires_at)),
            _ => None,
        })
    }

    /// Whether anyone can take a new chat now: a connected agent with their routing on,
    /// or, with routing off for the channel, any connected agent (they take chats from
    /// the waiting list). Agents at capacity count: the chat waits for them.
    pub fn someone_to_answer(&self) -> bool {
        self.agents
            .values()
            .any(|a| a.connections > 0 && (a.routing || !self.channel_on))
    }

    /// Where `case` stands in the queue: 1 for the next chat to be taken.
    pub fn position(&self, case: CaseId) -> Option<usize> {
        self.queue
            .iter()
            .position(|w| w.case == case)
            .map(|i| i + 1)
    }

    pub fn handle(&mut self, now: Millis, event: Event) -> Vec<Decision> {
        let mut out = Vec::new();
        self.apply(now, event, &mut out);
        self.expire_offers(now, &mut out);
        self.route(now, &mut out);
        out
    }

    fn apply(&mut self, now: Millis, event: Event, out: &mut Vec<Decision>) {
        match event {
            Event::AgentConnected {
                agent,
                routing,
                capacity,
                load,
                groups,
            } => {
                let entry = self.agents.entry(agent).or_insert(Agent {
                    connections: 0,
                    routing,
                    capacity,
                    load,
                    groups: Vec::new(),
                    idle_since: now,
                });
                entry.connections += 1;
                // What a console read when it connected may be older than what this
                // engine has since heard or decided (chats given to the agent whose
                // commits are still on the way, their switch turned off by an ignored
                // screen pop, an admin's change): while the agent stays connected, the
                // engine's own view holds.
                if entry.connections == 1 {
                    entry.routing = routing;
                    entry.capacity = capacity.max(1);
                    entry.load = load;
                    entry.groups = groups;
                }
                if !entry.routing {
                    self.close_offer_of(agent, OfferClosed::Disabled, out);
                }
            }
            Event::AgentUpdated {
                agent,
                capacity,
                groups,
            } => {
                if let Some(entry) = self.agents.get_mut(&agent) {
                    entry.capacity = capacity.max(1);
                    entry.groups = groups;
                }
            }
            Event::AgentRemoved { agent } => {
                self.agents.remove(&agent);
                self.close_offer_of(agent, OfferClosed::Withdrawn, out);
            }
            Event::ChannelRouting { on } => {
                self.channel_on = on;
                if !on {
                    let holders: Vec<AgentId> = self
                        .queue
                        .iter()
                        .filter_map(|w| w.offer.map(|o| o.agent))
                        .collect();
                    for agent in holders {
                        self.close_offer_of(agent, OfferClosed::Withdrawn, out);
                    }
                }
            }
            Event::AgentDisconnected { agent } => {
                let Some(entry) = self.agents.get_mut(&agent) else {
                    return;
                };
                entry.connections = entry.connections.saturating_sub(1);
                if entry.connections == 0 {
                    self.agents.remove(&agent);
                    self.close_offer_of(agent, OfferClosed::Withdrawn, out);
                }
            }
            Event::RoutingSwitched { agent, on } => {
                if let Some(entry) = self.agents.get_mut(&agent) {
                    entry.routing = on;
                }
                if !on {
                    self.close_offer_of(agent, OfferClosed::Disabled, out);
                }
            }
            Event::ChatQueued {
                case,
                group,
                offer,
                away,
            } => {
                if self.position(case).is_none() {
                    let offer = offer.map(|(agent, expires_at)| Offered { agent, expires_at });
                    self.queue.push(Waiting {
                        case,
                        group,
                        offer,
                        away,
                    });
                }
            }
            // A screen pop already up stays for its countdown (a customer moving between
            // pages of the site is gone for a moment only); see `expire_offers`.
            Event::CustomerPresence { case, here } => {
                if let Some(waiting) = self.queue.iter_mut().find(|w| w.case == case) {
                    waiting.away = !here;
                }
            }
            Event::Accept { agent, case } => self.accept(now, agent, case, out),
            Event::Disable { agent, case } => {
                let had_offer = self.offer_of(agent).is_some_and(|(c, _)| c == case);
                let was_on = self.agents.get(&agent).is_some_and(|a| a.routing);
                self.close_offer_of(agent, OfferClosed::Disabled, out);
                if let Some(entry) = self.agents.get_mut(&agent) {
                    entry.routing = false;
                }
                if had_offer || was_on {
                    out.push(Decision::RoutingOff {
                        agent,
                        change: RoutingChange::DisabledFromOffer,
                    });
                }
            }
            Event::ChatLeft { case } => {
                if let Some(i) = self.queue.iter().position(|w| w.case == case) {
                    let waiting = self.queue.remove(i);
                    if let Some(offer) = waiting.offer {
                        out.push(Decision::OfferClosed {
                            case,
                            agent: offer.agent,
                            reason: OfferClosed::Abandoned,
                        });
                    }
                }
            }
            Event::ChatClosed { agent, .. } => {
                if let Some(entry) = self.agents.get_mut(&agent) {
                    entry.load = entry.load.saturating_sub(1);
                    entry.idle_since = now;
                }
            }
            Event::Tick => {}
        }
    }

    fn accept(&mut self, now: Millis, agent: AgentId, case: CaseId, out: &mut Vec<Decision>) {
        let refuse = |refusal| Decision::Refuse {
            case,
            agent,
            refusal,
        };
        let Some(i) = self.queue.iter().position(|w| w.case == case) else {
            out.push(refuse(Refusal::NotWaiting));
            return;
        };
        let offer = self.queue[i].offer;
        if offer.is_some_and(|o| o.agent != agent) {
            out.push(refuse(Refusal::OfferedToAnother));
            return;
        }
        // An agent routing counts no console of has no known load to check: with
        // several nodes, their node's news may not have reached a new routing node yet.
        let Some(entry) = self.agents.get_mut(&agent) else {
            out.push(refuse(Refusal::NotConnected));
            return;
        };
        if entry.load >= entry.capacity {
            out.push(refuse(Refusal::AtCapacity));
            return;
        }
        entry.load += 1;
        entry.idle_since = now;
        self.queue.remove(i);
        if offer.is_some() {
            out.push(Decision::OfferClosed {
                case,
                agent,
                reason: OfferClosed::Accepted,
            });
        }
        out.push(Decision::Assign { case, agent });
    }

    fn close_offer_of(&mut self, agent: AgentId, reason: OfferClosed, out: &mut Vec<Decision>) {
        for waiting in &mut self.queue {
            if waiting.offer.is_some_and(|o| o.agent == agent) {
                waiting.offer = None;
                out.push(Decision::OfferClosed {
                    case: waiting.case,
                    agent,
                    reason,
                });
            }
        }
    }

    /// An offer whose countdown reached 0 goes away, and the agent who ignored it has
    /// their routing switched off, unless the customer had gone meanwhile: nobody is
    /// blamed for not answering someone who left.
    fn expire_offers(&mut self, now: Millis, out: &mut Vec<Decision>) {
        for waiting in &mut self.queue {
            let Some(offer) = waiting.offer else { continue };
            if offer.expires_at > now {
                continue;
            }
            waiting.offer = None;
            if waiting.away {
                out.push(Decision::OfferClosed {
                    case: waiting.case,
                    agent: offer.agent,
                    reason: OfferClosed::Abandoned,
                });
                continue;
            }
            out.push(Decision::OfferClosed {
                case: waiting.case,
                agent: offer.agent,
                reason: OfferClosed::TimedOut,
            });
            if let Some(entry) = self.agents.get_mut(&offer.agent) {
                entry.routing = false;
            }
            out.push(Decision::RoutingOff {
                agent: offer.agent,
                change: RoutingChange::IgnoredOffer,
            });
        }
    }

    /// Offers each waiting chat without a screen pop whose customer is there, oldest
    /// first, to the longest-idle agent who has routing on, room for a chat and no other
    /// screen pop — one of the chat's group if any such agent is free, else anyone.
    fn route(&mut self, now: Millis, out: &mut Vec<Decision>) {
        if !self.channel_on {
            return;
        }
        for i in 0..self.queue.len() {
            if self.queue[i].offer.is_some() || self.queue[i].away {
                continue;
            }
            let busy: Vec<AgentId> = self
                .queue
                .iter()
                .filter_map(|w| w.offer.map(|o| o.agent))
                .collect();
            let group = self.queue[i].group;
            let pick = |in_group: bool| {
                self.agents
                    .iter()
                    .filter(|(id, a)| a.available() && !busy.contains(id))
                    .filter(|(_, a)| !in_group || group.is_some_and(|g| a.groups.contains(&g)))
                    .min_by_key(|(id, a)| (a.idle_since, **id))
                    .map(|(id, _)| *id)
            };
            let next = if group.is_some() {
                pick(true).or_else(|| pick(false))
            } else {
                pick(false)
            };
            let Some(agent) = next else { break };
            let expires_at = now + self.offer_timeout_ms;
            self.queue[i].offer = Some(Offered { agent, expires_at });
            out.push(Decision::Offer {
                case: self.queue[i].case,
                agent,
                expires_at,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TIMEOUT: Millis = 30_000;

    fn connected(agent: AgentId) -> Event {
        Event::AgentConnected {
            agent,
            routing: true,
            capacity: 2,
            load: 0,
            groups: vec![],
        }
    }

    fn queued(case: CaseId) -> Event {
        Event::ChatQueued {
            case,
            group: None,
            offer: None,
            away: false,
        }
    }

    fn offers(decisions: &[Decision]) -> Vec<(CaseId, AgentId)> {
        decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Offer { case, agent, .. } => Some((*case, *agent)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_second_console_connecting_keeps_the_chats_given_to_the_agent_since_it_read_its_load() {
        let mut engine = Engine::new(TIMEOUT, false);
        engine.handle(0, connected(1));
        for case in [100, 101, 102] {
            engine.handle(1, queued(case));
        }
        for case in [100, 101] {
            let out = engine.handle(2, Event::Accept { agent: 1, case });
            assert!(
                out.contains(&Decision::Assign { case, agent: 1 }),
                "{out:?}"
            );
        }
        // A second console, which read a load of 0 before those two were given.
        engine.handle(3, connected(1));
        let out = engine.handle(
            4,
            Event::Accept {
                agent: 1,
                case: 102,
            },
        );
        assert_eq!(
            out,
            vec![Decision::Refuse {
                case: 102,
                agent: 1,
                refusal: Refusal::AtCapacity
            }]
        );
    }

    #[test]
    fn a_second_console_keeps_the_switch_an_ignored_screen_pop_turned_off() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        assert_eq!(offers(&engine.handle(1, queued(100))), vec![(100, 1)]);
        let out = engine.handle(1 + TIMEOUT, Event::Tick);
        assert!(
            out.iter()
                .any(|d| matches!(d, Decision::RoutingOff { agent: 1, .. }))
        );
        // A console that read the switch as on before that was committed.
        engine.handle(2 + TIMEOUT, connected(1));
        assert!(offers(&engine.handle(3 + TIMEOUT, queued(101))).is_empty());
    }

    #[test]
    fn an_accept_from_an_agent_routing_counts_no_console_of_is_refused() {
        let mut engine = Engine::new(TIMEOUT, false);
        engine.handle(0, queued(100));
        let out = engine.handle(
            1,
            Event::Accept {
                agent: 7,
                case: 100,
            },
        );
        assert_eq!(
            out,
            vec![Decision::Refuse {
                case: 100,
                agent: 7,
                refusal: Refusal::NotConnected
            }]
        );
        // Once a console of theirs counts, they may take it.
        engine.handle(2, connected(7));
        let out = engine.handle(
            3,
            Event::Accept {
                agent: 7,
                case: 100,
            },
        );
        assert!(out.contains(&Decision::Assign {
            case: 100,
            agent: 7
        }));
    }

    #[test]
    fn a_queued_chat_is_offered_to_an_agent_with_routing_on() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        let out = engine.handle(10, queued(100));
        assert_eq!(
            out,
            vec![Decision::Offer {
                case: 100,
                agent: 1,
                expires_at: 10 + TIMEOUT
            }]
        );
        assert_eq!(engine.next_deadline(), Some(10 + TIMEOUT));
    }

    #[test]
    fn an_agent_with_routing_off_gets_no_screen_pop() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(
            0,
            Event::AgentConnected {
                agent: 1,
                routing: false,
                capacity: 2,
                load: 0,
                groups: vec![],
            },
        );
        assert!(engine.handle(0, queued(100)).is_empty());
        let out = engine.handle(5, Event::RoutingSwitched { agent: 1, on: true });
        assert_eq!(offers(&out), vec![(100, 1)]);
    }

    #[test]
    fn accepting_a_screen_pop_assigns_the_chat() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        engine.handle(0, queued(100));
        let out = engine.handle(
            1,
            Event::Accept {
                agent: 1,
                case: 100,
            },
        );
        assert_eq!(
            out,
            vec![
                Decision::OfferClosed {
                    case: 100,
                    agent: 1,
                    reason: OfferClosed::Accepted
                },
                Decision::Assign {
                    case: 100,
                    agent: 1
                }
            ]
        );
        assert_eq!(engine.position(100), None);
        assert_eq!(engine.next_deadline(), None);
    }

    #[test]
    fn ignoring_a_screen_pop_disables_routing_and_routes_to_the_next_agent() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        engine.handle(1, connected(2));
        engine.handle(2, queued(100));
        assert_eq!(engine.offer_of(1).map(|o| o.0), Some(100));
        assert!(engine.handle(TIMEOUT + 1, Event::Tick).is_empty());
        let out = engine.handle(TIMEOUT + 2, Event::Tick);
        assert_eq!(
            out,
            vec![
                Decision::OfferClosed {
                    case: 100,
                    agent: 1,
                    reason: OfferClosed::TimedOut
                },
                Decision::RoutingOff {
                    agent: 1,
                    change: RoutingChange::IgnoredOffer
                },
                Decision::Offer {
                    case: 100,
                    agent: 2,
                    expires_at: TIMEOUT + 2 + TIMEOUT
                },
            ]
        );
    }

    #[test]
    fn disable_turns_routing_off_and_offers_the_chat_to_the_next_agent() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        engine.handle(1, connected(2));
        engine.handle(2, queued(100));
        let out = engine.handle(
            3,
            Event::Disable {
                agent: 1,
                case: 100,
            },
        );
        assert!(out.contains(&Decision::RoutingOff {
            agent: 1,
            change: RoutingChange::DisabledFromOffer
        }));
        assert_eq!(offers(&out), vec![(100, 2)]);
    }

    #[test]
    fn an_unanswered_chat_waits_until_an_agent_is_available() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        engine.handle(0, queued(100));
        let out = engine.handle(TIMEOUT, Event::Tick);
        assert!(offers(&out).is_empty());
        assert_eq!(engine.position(100), Some(1));
        let out = engine.handle(TIMEOUT + 5, Event::RoutingSwitched { agent: 1, on: true });
        assert_eq!(offers(&out), vec![(100, 1)]);
    }

    #[test]
    fn a_chat_on_another_agents_screen_pop_cannot_be_taken() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        engine.handle(1, connected(2));
        engine.handle(2, queued(100));
        let out = engine.handle(
            3,
            Event::Accept {
                agent: 2,
                case: 100,
            },
        );
        assert_eq!(
            out,
            vec![Decision::Refuse {
                case: 100,
                agent: 2,
                refusal: Refusal::OfferedToAnother
            }]
        );
    }

    #[test]
    fn an_agent_at_capacity_is_skipped() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(
            0,
            Event::AgentConnected {
                agent: 1,
                routing: true,
                capacity: 1,
                load: 1,
                groups: vec![],
            },
        );
        engine.handle(1, connected(2));
        assert_eq!(offers(&engine.handle(2, queued(100))), vec![(100, 2)]);
    }

    #[test]
    fn an_agent_has_one_screen_pop_at_a_time() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        engine.handle(0, queued(100));
        assert!(offers(&engine.handle(0, queued(101))).is_empty());
        let out = engine.handle(
            1,
            Event::Accept {
                agent: 1,
                case: 100,
            },
        );
        assert_eq!(offers(&out), vec![(101, 1)]);
    }

    #[test]
    fn the_longest_idle_agent_is_offered_first() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        engine.handle(5, connected(2));
        engine.handle(6, queued(100));
        engine.handle(
            7,
            Event::Accept {
                agent: 1,
                case: 100,
            },
        );
        // Agent 1 just took a chat; agent 2 has been idle longer now.
        assert_eq!(offers(&engine.handle(8, queued(101))), vec![(101, 2)]);
    }

    #[test]
    fn an_abandoned_chat_leaves_the_queue_and_its_screen_pop_closes() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        engine.handle(0, queued(100));
        let out = engine.handle(1, Event::ChatLeft { case: 100 });
        assert_eq!(
            out,
            vec![Decision::OfferClosed {
                case: 100,
                agent: 1,
                reason: OfferClosed::Abandoned
            }]
        );
        assert_eq!(engine.position(100), None);
    }

    #[test]
    fn an_offer_restored_after_a_restart_keeps_its_deadline() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(
            0,
            Event::ChatQueued {
                case: 100,
                group: None,
                offer: Some((1, 500)),
                away: false,
            },
        );
        assert_eq!(engine.next_deadline(), Some(500));
        let out = engine.handle(500, Event::Tick);
        assert!(out.contains(&Decision::RoutingOff {
            agent: 1,
            change: RoutingChange::IgnoredOffer
        }));
    }

    fn presence(case: CaseId, here: bool) -> Event {
        Event::CustomerPresence { case, here }
    }

    #[test]
    fn a_chat_whose_customer_has_gone_waits_unoffered_until_they_are_back() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, queued(100));
        engine.handle(1, presence(100, false));
        assert!(offers(&engine.handle(2, connected(1))).is_empty());
        let listed: Vec<Queued> = engine.waiting().collect();
        assert_eq!(
            listed,
            [Queued {
                case: 100,
                offered: false,
                away: true
            }]
        );
        assert_eq!(engine.position(100), Some(1), "it keeps its place");
        assert_eq!(
            offers(&engine.handle(3, presence(100, true))),
            vec![(100, 1)]
        );
    }

    #[test]
    fn a_chat_queued_again_after_its_customer_left_is_not_offered() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        let out = engine.handle(
            1,
            Event::ChatQueued {
                case: 100,
                group: None,
                offer: None,
                away: true,
            },
        );
        assert!(offers(&out).is_empty());
    }

    #[test]
    fn a_screen_pop_whose_customer_left_runs_out_without_switching_routing_off() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        engine.handle(1, queued(100));
        // The pop stays up: the customer may only be moving to another page.
        assert!(engine.handle(2, presence(100, false)).is_empty());
        assert_eq!(engine.offer_of(1), Some((100, 1 + TIMEOUT)));
        let out = engine.handle(1 + TIMEOUT, Event::Tick);
        assert_eq!(
            out,
            vec![Decision::OfferClosed {
                case: 100,
                agent: 1,
                reason: OfferClosed::Abandoned
            }]
        );
        assert!(engine.agents[&1].routing);
        // Back before the pop ran out: nothing happens, the pop simply goes on.
        engine.handle(2 + TIMEOUT, queued(101));
        engine.handle(3 + TIMEOUT, presence(101, false));
        engine.handle(4 + TIMEOUT, presence(101, true));
        let out = engine.handle(2 + 2 * TIMEOUT, Event::Tick);
        assert!(out.contains(&Decision::RoutingOff {
            agent: 1,
            change: RoutingChange::IgnoredOffer
        }));
    }

    #[test]
    fn an_agent_going_offline_hands_their_screen_pop_on() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        engine.handle(1, connected(2));
        engine.handle(2, queued(100));
        let out = engine.handle(3, Event::AgentDisconnected { agent: 1 });
        assert_eq!(offers(&out), vec![(100, 2)]);
    }

    fn in_group(agent: AgentId, group: GroupId) -> Event {
        Event::AgentConnected {
            agent,
            routing: true,
            capacity: 2,
            load: 0,
            groups: vec![group],
        }
    }

    #[test]
    fn a_chat_for_a_group_goes_to_that_groups_agents_first() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        engine.handle(1, in_group(2, 7));
        let out = engine.handle(
            2,
            Event::ChatQueued {
                case: 100,
                group: Some(7),
                offer: None,
                away: false,
            },
        );
        // Agent 1 has been idle longer, but agent 2 is in the chat's group.
        assert_eq!(offers(&out), vec![(100, 2)]);
    }

    #[test]
    fn a_chat_for_a_group_nobody_of_it_can_take_goes_to_anyone() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        let out = engine.handle(
            1,
            Event::ChatQueued {
                case: 100,
                group: Some(7),
                offer: None,
                away: false,
            },
        );
        assert_eq!(offers(&out), vec![(100, 1)]);
    }

    #[test]
    fn with_channel_routing_off_nobody_gets_a_screen_pop_and_chats_wait() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        engine.handle(0, queued(100));
        let out = engine.handle(1, Event::ChannelRouting { on: false });
        assert_eq!(
            out,
            vec![Decision::OfferClosed {
                case: 100,
                agent: 1,
                reason: OfferClosed::Withdrawn
            }]
        );
        assert!(offers(&engine.handle(2, queued(101))).is_empty());
        let waiting: Vec<(CaseId, bool)> = engine.waiting().map(|q| (q.case, q.offered)).collect();
        assert_eq!(waiting, [(100, false), (101, false)]);
        // Entering a waiting chat by clicking it still works.
        let out = engine.handle(
            3,
            Event::Accept {
                agent: 1,
                case: 101,
            },
        );
        assert!(out.contains(&Decision::Assign {
            case: 101,
            agent: 1
        }));
        // Back on: the rest is routed again.
        let out = engine.handle(4, Event::ChannelRouting { on: true });
        assert_eq!(offers(&out), vec![(100, 1)]);
    }

    #[test]
    fn two_agents_clicking_the_same_waiting_chat_one_wins_the_other_is_told() {
        let mut engine = Engine::new(TIMEOUT, false);
        engine.handle(0, connected(1));
        engine.handle(0, connected(2));
        engine.handle(1, queued(100));
        let first = engine.handle(
            2,
            Event::Accept {
                agent: 2,
                case: 100,
            },
        );
        assert!(first.contains(&Decision::Assign {
            case: 100,
            agent: 2
        }));
        let second = engine.handle(
            2,
            Event::Accept {
                agent: 1,
                case: 100,
            },
        );
        assert_eq!(
            second,
            vec![Decision::Refuse {
                case: 100,
                agent: 1,
                refusal: Refusal::NotWaiting
            }]
        );
    }

    #[test]
    fn a_deactivated_agents_screen_pop_goes_to_the_next_agent() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        engine.handle(1, connected(2));
        engine.handle(2, queued(100));
        let out = engine.handle(3, Event::AgentRemoved { agent: 1 });
        assert_eq!(offers(&out), vec![(100, 2)]);
        // Even with a second console still counted, the agent is gone.
        assert!(!engine.agents.contains_key(&1));
    }

    #[test]
    fn a_lower_capacity_takes_effect_for_the_next_offer() {
        let mut engine = Engine::new(TIMEOUT, true);
        engine.handle(0, connected(1));
        engine.handle(0, queued(100));
        engine.handle(
            1,
            Event::Accept {
                agent: 1,
                case: 100,
            },
        );
        engine.handle(
            2,
            Event::AgentUpdated {
                agent: 1,
                capacity: 1,
                groups: vec![],
            },
        );
        assert!(offers(&engine.handle(3, queued(101))).is_empty());
    }

    #[derive(Clone, Debug)]
    enum Step {
        Connect(AgentId, bool, Option<GroupId>),
        Disconnect(AgentId),
        Remove(AgentId),
        Switch(AgentId, bool),
        Channel(bool),
        Queue(CaseId, Option<GroupId>),
        Accept(AgentId, CaseId),
        Disable(AgentId, CaseId),
        Leave(CaseId),
        Close(AgentId, CaseId),
        Presence(CaseId, bool),
        Wait(Millis),
    }

    fn step() -> impl Strategy<Value = Step> {
        let agent = 1..4i64;
        let case = 100..106i64;
        prop_oneof![
            (agent.clone(), any::<bool>(), prop::option::of(1..3i64))
                .prop_map(|(a, r, g)| Step::Connect(a, r, g)),
            agent.clone().prop_map(Step::Disconnect),
            agent.clone().prop_map(Step::Remove),
            (agent.clone(), any::<bool>()).prop_map(|(a, on)| Step::Switch(a, on)),
            any::<bool>().prop_map(Step::Channel),
            (case.clone(), prop::option::of(1..3i64)).prop_map(|(c, g)| Step::Queue(c, g)),
            (agent.clone(), case.clone()).prop_map(|(a, c)| Step::Accept(a, c)),
            (agent.clone(), case.clone()).prop_map(|(a, c)| Step::Disable(a, c)),
            case.clone().prop_map(Step::Leave),
            (agent, case.clone()).prop_map(|(a, c)| Step::Close(a, c)),
            (case, any::<bool>()).prop_map(|(c, here)| Step::Presence(c, here)),
            (0..(2 * TIMEOUT)).prop_map(Step::Wait),
        ]
    }

    proptest! {
        #[test]
        fn routing_invariants_hold_for_any_sequence_of_events(steps in prop::collection::vec(step(), 1..60)) {
            let mut engine = Engine::new(TIMEOUT, true);
            let mut now = 0;
            let mut assigned: BTreeMap<CaseId, AgentId> = BTreeMap::new();
            for step in steps {
                let event = match step {
                    Step::Connect(agent, routing, group) => Event::AgentConnected {
                        agent,
                        routing,
                        capacity: 2,
                        load: assigned.values().filter(|a| **a == agent).count() as u32,
                        groups: group.into_iter().collect(),
                    },
                    Step::Disconnect(agent) => Event::AgentDisconnected { agent },
                    Step::Remove(agent) => Event::AgentRemoved { agent },
                    Step::Switch(agent, on) => Event::RoutingSwitched { agent, on },
                    Step::Channel(on) => Event::ChannelRouting { on },
                    Step::Queue(case, group) => if assigned.contains_key(&case) {
                        continue
                    } else {
                        Event::ChatQueued { case, group, offer: None, away: false }
                    },
                    Step::Accept(agent, case) => Event::Accept { agent, case },
                    Step::Disable(agent, case) => Event::Disable { agent, case },
                    Step::Leave(case) => Event::ChatLeft { case },
                    Step::Close(agent, case) => {
                        if assigned.get(&case) != Some(&agent) { continue }
                        assigned.remove(&case);
                        Event::ChatClosed { agent, case }
                    }
                    Step::Presence(case, here) => Event::CustomerPresence { case, here },
                    Step::Wait(ms) => { now += ms; Event::Tick }
                };
                let away: Vec<CaseId> =
                    engine.queue.iter().filter(|w| w.away).map(|w| w.case).collect();
                let decisions = engine.handle(now, event);
                for decision in &decisions {
                    match *decision {
                        Decision::Assign { case, agent } => {
                            // An accepted chat has exactly one agent.
                            prop_assert!(assigned.insert(case, agent).is_none());
                        }
                        // Nobody gets a screen pop for a customer who has gone.
                        Decision::Offer { case, .. } => {
                            prop_assert!(engine.queue.iter().any(|w| w.case == case && !w.away));
                        }
                        // Nobody's routing goes off for a pop whose customer had gone.
                        Decision::OfferClosed { case, reason: OfferClosed::TimedOut, .. } => {
                            prop_assert!(!away.contains(&case));
                        }
                        _ => {}
                    }
                }
                // Each waiting chat is offered to at most one eligible agent, and each
                // agent holds at most one offer.
                let mut holders = Vec::new();
                for waiting in &engine.queue {
                    if let Some(offer) = waiting.offer {
                        let agent = &engine.agents[&offer.agent];
                        prop_assert!(agent.routing && agent.connections > 0 && engine.channel_on);
                        prop_assert!(!holders.contains(&offer.agent));
                        holders.push(offer.agent);
                    }
                    prop_assert!(!assigned.contains_key(&waiting.case));
                }
                // Whenever a chat waits and an eligible agent is free, an offer is out.
                let free = engine.agents.iter().any(|(id, a)| {
                    a.connections > 0 && a.routing && a.load < a.capacity && !holders.contains(id)
                });
                let unoffered = engine.queue.iter().any(|w| w.offer.is_none() && !w.away);
                prop_assert!(!(engine.channel_on && free && unoffered));
            }
        }
    }
}
