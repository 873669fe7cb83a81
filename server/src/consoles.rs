//! The consoles on each node, as routing counts them. The engine counts an agent's
//! consoles as one number; with several nodes, routing must also know where they are:
//! a node that goes silent (killed, cut off) takes its consoles with it, and a leader
//! that just took over learns each node's from the node itself.
//!
//! Nodes say how many consoles each agent has there at points in their stream of news
//! (`NodeNews::Consoles`), which this turns into the engine's connects and disconnects.
//! Because that count sits in the node's stream in order, counting it again changes
//! nothing: a node may send it every second.

use std::collections::HashMap;
use std::time::Duration;

use parlor_protocol::AgentId;
use tokio::time::Instant;

use crate::leader::NodeId;
use crate::routing::Event;

/// How long a node may stay silent before its consoles count as gone. Nodes answer
/// each beat of the leader (see [`crate::leader`]), so this is three beats missed.
pub const SILENT_AFTER: Duration = Duration::from_millis(3_500);

/// Counts the console `event` connects or disconnects into `agents` (consoles per
/// agent); `false` for one going that was never counted.
pub fn tally(agents: &mut HashMap<AgentId, u32>, event: &Event) -> bool {
    match event {
        Event::AgentConnected { agent, .. } => {
            *agents.entry(*agent).or_default() += 1;
            true
        }
        Event::AgentDisconnected { agent } => {
            let Some(consoles) = agents.get_mut(agent) else {
                return false;
            };
            *consoles -= 1;
            if *consoles == 0 {
                agents.remove(agent);
            }
            true
        }
        _ => true,
    }
}

pub struct Consoles {
    /// This node: never silent to itself.
    me: NodeId,
    nodes: HashMap<NodeId, Node>,
}

struct Node {
    /// Consoles per agent that routing heard connect, less those it heard go.
    agents: HashMap<AgentId, u32>,
    /// When the node was last heard from.
    heard: Instant,
}

impl Consoles {
    pub fn new(me: NodeId) -> Self {
        Self {
            me,
            nodes: HashMap::new(),
        }
    }

    fn node(&mut self, node: NodeId, now: Instant) -> &mut Node {
        let node = self.nodes.entry(node).or_insert_with(|| Node {
            agents: HashMap::new(),
            heard: now,
        });
        node.heard = now;
        node
    }

    /// Counts `event` from `node`; `false` when routing must not hear it: a console
    /// going that routing never heard come (it came before this leader took over, and
    /// the node's count already left it out).
    pub fn count(&mut self, node: NodeId, event: &Event, now: Instant) -> bool {
        if let Event::AgentRemoved { agent } = event {
            self.node(node, now);
            for node in self.nodes.values_mut() {
                node.agents.remove(agent);
            }
            return true;
        }
        tally(&mut self.node(node, now).agents, event)
    }

    /// `node` says it has `agents`' consoles now. Gives one agent per console routing
    /// must hear go, and how many consoles of each agent it must hear come (count each
    /// with [`Consoles::count`] as it is told).
    pub fn recount(
        &mut self,
        node: NodeId,
        agents: Vec<(AgentId, u32)>,
        now: Instant,
    ) -> (Vec<AgentId>, Vec<(AgentId, u32)>) {
        let now_there: HashMap<AgentId, u32> = agents.into_iter().filter(|(_, n)| *n > 0).collect();
        let known = &mut self.node(node.clone(), now).agents;
        let mut gone = Vec::new();
        for (agent, was) in known.iter_mut() {
            let is = now_there.get(agent).copied().unwrap_or(0);
            for _ in is..*was {
                gone.push(*agent);
            }
            *was = (*was).min(is);
        }
        known.retain(|_, n| *n > 0);
        let came = now_there
            .into_iter()
            .filter_map(|(agent, is)| {
                let was = known.get(&agent).copied().unwrap_or(0);
                (is > was).then_some((agent, is - was))
            })
            .collect();
        if known.is_empty() && node != self.me {
            // Nothing to watch it for until it is heard again.
            self.nodes.remove(&node);
        }
        (gone, came)
    }

    /// The other nodes not heard from for [`SILENT_AFTER`] that have consoles counted.
    pub fn silent(&self, now: Instant) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(id, node)| {
                **id != self.me
                    && !node.agents.is_empty()
                    && now.duration_since(node.heard) >= SILENT_AFTER
            })
            .map(|(id, _)| id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(agent: AgentId) -> Event {
        Event::AgentConnected {
            agent,
            routing: true,
            capacity: 2,
            load: 0,
            groups: Vec::new(),
        }
    }

    fn ids(node: &str) -> NodeId {
        node.to_owned()
    }

    #[test]
    fn a_console_going_that_routing_never_heard_come_is_not_heard() {
        let now = Instant::now();
        let mut consoles = Consoles::new(ids("a"));
        assert!(!consoles.count(ids("b"), &Event::AgentDisconnected { agent: 7 }, now));
        assert!(consoles.count(ids("b"), &connect(7), now));
        assert!(consoles.count(ids("b"), &Event::AgentDisconnected { agent: 7 }, now));
        assert!(!consoles.count(ids("b"), &Event::AgentDisconnected { agent: 7 }, now));
    }

    #[test]
    fn a_node_counting_again_what_routing_already_heard_changes_nothing() {
        let now = Instant::now();
        let mut consoles = Consoles::new(ids("a"));
        consoles.count(ids("b"), &connect(7), now);
        consoles.count(ids("b"), &connect(7), now);
        assert_eq!(
            consoles.recount(ids("b"), vec![(7, 2)], now),
            (vec![], vec![])
        );
        let (gone, came) = consoles.recount(ids("b"), vec![(7, 1), (8, 3)], now);
        assert_eq!(gone, vec![7]);
        assert_eq!(came, vec![(8, 3)]);
        // `came` is counted as routing hears it.
        for _ in 0..3 {
            consoles.count(ids("b"), &connect(8), now);
        }
        assert_eq!(
            consoles.recount(ids("b"), vec![(7, 1), (8, 3)], now),
            (vec![], vec![])
        );
        let (mut gone, came) = consoles.recount(ids("b"), vec![], now);
        gone.sort_unstable();
        assert_eq!(gone, vec![7, 8, 8, 8]);
        assert!(came.is_empty());
    }

    #[test]
    fn a_silent_node_is_found_but_never_this_one() {
        let start = Instant::now();
        let mut consoles = Consoles::new(ids("a"));
        consoles.count(ids("a"), &connect(1), start);
        consoles.count(ids("b"), &connect(2), start);
        consoles.count(ids("c"), &connect(3), start);
        let later = start + SILENT_AFTER;
        consoles.count(ids("c"), &Event::Tick, later);
        assert_eq!(consoles.silent(later), vec![ids("b")]);
        let (gone, _) = consoles.recount(ids("b"), vec![], later);
        assert_eq!(gone, vec![2]);
        assert!(consoles.silent(later).is_empty());
    }

    #[test]
    fn an_agent_switched_off_leaves_every_node() {
        let now = Instant::now();
        let mut consoles = Consoles::new(ids("a"));
        consoles.count(ids("a"), &connect(1), now);
        consoles.count(ids("b"), &connect(1), now);
        assert!(consoles.count(ids("a"), &Event::AgentRemoved { agent: 1 }, now));
        assert!(!consoles.count(ids("b"), &Event::AgentDisconnected { agent: 1 }, now));
        assert_eq!(consoles.recount(ids("b"), vec![], now), (vec![], vec![]));
    }
}
