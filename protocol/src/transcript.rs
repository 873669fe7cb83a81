//! A client's copy of one chat: messages kept in `seq` order with no duplicates, however
//! they arrive (live, in a resume, twice after a reconnect), and the client's own
//! messages that are still on their way.

use crate::{ChatMessage, Seq};

/// A message this client sent that the server has not confirmed yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub client_id: String,
    pub body: String,
    /// Set when the server refused it; the text is why.
    pub failed: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    messages: Vec<ChatMessage>,
    pending: Vec<Pending>,
}

impl Transcript {
    pub fn messages(&self) -> &[ChatMessage] {
        &self.messages
    }

    pub fn pending(&self) -> &[Pending] {
        &self.pending
    }

    /// The sends still on their way that the server has not refused: what a client
    /// sends again after it reconnects (the server stores each `client_id` once).
    pub fn unsent(&self) -> impl Iterator<Item = &Pending> {
        self.pending.iter().filter(|p| p.failed.is_none())
    }

    /// The last `seq` held: what to resume from.
    pub fn last_seq(&self) -> Seq {
        self.messages.last().map_or(0, |m| m.seq)
    }

    /// The first `seq` held: where `load_earlier` asks from.
    pub fn first_seq(&self) -> Seq {
        self.messages.first().map_or(0, |m| m.seq)
    }

    /// Whether the chat has messages before the first one held. Sequence numbers start
    /// at 1 and have no gaps, so this needs no word from the server.
    pub fn has_earlier(&self) -> bool {
        self.first_seq() > 1
    }

    /// Takes a page the server sent on (re)joining the chat: the latest messages after
    /// the `since` this copy asked from. When the page does not join up with what is
    /// held (more came meanwhile than one page holds), the copy starts over from the
    /// page, so it never shows a hole; what went is one `load_earlier` away.
    pub fn resume(&mut self, page: Vec<ChatMessage>) {
        if page
            .first()
            .is_some_and(|first| !self.messages.is_empty() && first.seq > self.last_seq() + 1)
        {
            self.messages.clear();
        }
        self.extend(page);
    }

    /// Adds a message where its `seq` puts it; one already held is ignored. Returns
    /// whether it was new. A message confirming one of ours ends its pending state.
    /// Whether the message with this `seq` is here already.
    pub fn has(&self, seq: Seq) -> bool {
        self.messages.binary_search_by_key(&seq, |m| m.seq).is_ok()
    }

    pub fn insert(&mut self, message: ChatMessage) -> bool {
        self.pending.retain(|p| p.client_id != message.client_id);
        match self.messages.binary_search_by_key(&message.seq, |m| m.seq) {
            Ok(_) => false,
            Err(at) => {
                self.messages.insert(at, message);
                true
            }
        }
    }

    pub fn extend(&mut self, messages: impl IntoIterator<Item = ChatMessage>) {
        for message in messages {
            self.insert(message);
        }
    }

    /// Records a message sent but not yet confirmed.
    pub fn add_pending(&mut self, client_id: String, body: String) {
        self.pending.push(Pending {
            client_id,
            body,
            failed: None,
        });
    }

    /// Takes a pending message back (to put its text back in the composer).
    pub fn take_pending(&mut self, client_id: &str) -> Option<Pending> {
        let at = self.pending.iter().position(|p| p.client_id == client_id)?;
        Some(self.pending.remove(at))
    }

    /// Marks a pending message as refused, with the reason.
    pub fn fail_pending(&mut self, client_id: &str, reason: String) {
        if let Some(p) = self.pending.iter_mut().find(|p| p.client_id == client_id) {
            p.failed = Some(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Author;

    fn message(seq: Seq, client_id: &str) -> ChatMessage {
        ChatMessage {
            case_id: 1,
            seq,
            client_id: client_id.into(),
            author: Author::System,
            body: format!("m{seq}"),
            sent_at: 0,
        }
    }

    #[test]
    fn messages_are_kept_in_seq_order_whatever_order_they_arrive_in() {
        let mut t = Transcript::default();
        t.extend([message(3, "c"), message(1, "a"), message(2, "b")]);
        let seqs: Vec<Seq> = t.messages().iter().map(|m| m.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(t.last_seq(), 3);
    }

    fn seqs(t: &Transcript) -> Vec<Seq> {
        t.messages().iter().map(|m| m.seq).collect()
    }

    #[test]
    fn a_page_that_joins_up_extends_the_copy() {
        let mut t = Transcript::default();
        t.resume(vec![message(4, "d"), message(5, "e")]);
        assert!(t.has_earlier());
        t.resume(vec![message(6, "f")]);
        assert_eq!(seqs(&t), [4, 5, 6]);
        t.extend([message(2, "b"), message(3, "c")]);
        assert_eq!(seqs(&t), [2, 3, 4, 5, 6]);
        t.extend([message(1, "a")]);
        assert!(!t.has_earlier());
    }

    #[test]
    fn a_page_that_leaves_a_hole_replaces_the_copy_but_keeps_my_pending_messages() {
        let mut t = Transcript::default();
        t.extend([message(1, "a"), message(2, "b")]);
        t.add_pending("mine".into(), "on its way".into());
        t.resume(vec![message(60, "x"), message(61, "y")]);
        assert_eq!(seqs(&t), [60, 61]);
        assert!(t.has_earlier());
        assert_eq!(t.pending().len(), 1);
    }

    #[test]
    fn an_empty_page_changes_nothing() {
        let mut t = Transcript::default();
        t.extend([message(1, "a")]);
        t.resume(Vec::new());
        assert_eq!(seqs(&t), [1]);
        assert!(!Transcript::default().has_earlier());
    }

    #[test]
    fn a_message_received_twice_is_shown_once() {
        let mut t = Transcript::default();
        assert!(t.insert(message(1, "a")));
        assert!(!t.insert(message(1, "a")));
        assert_eq!(t.messages().len(), 1);
    }

    #[test]
    fn the_servers_copy_of_my_message_ends_its_pending_state() {
        let mut t = Transcript::default();
        t.add_pending("mine".into(), "hello".into());
        t.add_pending("later".into(), "again".into());
        t.fail_pending("later", "too long".into());
        t.insert(message(1, "mine"));
        assert_eq!(t.pending().len(), 1);
        assert_eq!(t.pending()[0].failed.as_deref(), Some("too long"));
    }

    #[test]
    fn a_pending_message_can_be_taken_back() {
        let mut t = Transcript::default();
        t.add_pending("mine".into(), "{{ oops".into());
        assert_eq!(
            t.take_pending("mine").map(|p| p.body),
            Some("{{ oops".into())
        );
        assert!(t.pending().is_empty());
        assert_eq!(t.take_pending("mine"), None);
    }
}
