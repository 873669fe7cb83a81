//! A socket's outbox: bounded in frames and in bytes, so that one slow reader never
//! makes the server hold an unbounded backlog for it (see the hub).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use futures_util::task::AtomicWaker;

/// A serialised frame, shared by every socket it goes to: each socket writes the same
/// bytes, counted by reference rather than copied.
pub type Outbound = axum::extract::ws::Utf8Bytes;

/// How many frames may wait for one slow socket before it is dropped.
pub const OUTBOX_FRAMES: usize = 256;

/// How many bytes of frames may wait for one slow socket before it is dropped: a few
/// pages of transcript. A single larger frame (a console's welcome with many chats)
/// still goes to a socket that has nothing waiting.
pub const OUTBOX_BYTES: usize = 1024 * 1024;

/// The sending end of a socket's outbox, bounded in frames and in bytes.
///
/// A queue under a lock rather than a channel: a channel allocates a block of 32 slots
/// and its state up front, 1.5 KiB per socket, though most sockets are idle chats with
/// nothing waiting. This holds nothing until a frame waits.
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The socket writer's end of its outbox.
pub struct OutboxReader {
    shared: Arc<Shared>,
}

/// The socket is too far behind: its outbox holds as many frames or bytes as it may.
#[derive(Debug)]
pub struct Behind;

struct Shared {
    queue: Mutex<Queue>,
    /// The writer waiting for frames, woken when a frame is queued, the outbox closes,
    /// or its last sender goes. Waking nobody costs one atomic operation, so a burst
    /// of frames wakes the writer once.
    ready: AtomicWaker,
}

struct Queue {
    frames: VecDeque<Outbound>,
    /// Bytes queued and not yet taken by the socket's writer.
    bytes: usize,
    /// The writer takes no more frames: a frame pushed now is dropped.
    closed: bool,
    /// [`Outbox`] handles alive; with none left the writer ends once the queue is empty.
    senders: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Never held across an await or a panic-prone call; recover anyway.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub(super) fn outbox() -> (Outbox, OutboxReader) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            frames: VecDeque::new(),
            bytes: 0,
            closed: false,
            senders: 1,
        }),
        ready: AtomicWaker::new(),
    });
    (
        Outbox {
            shared: shared.clone(),
        },
        OutboxReader { shared },
    )
}

impl Outbox {
    /// Queues a frame without waiting. A socket already closing takes it silently.
    pub fn push(&self, frame: Outbound) -> Result<(), Behind> {
        let mut queue = self.shared.lock();
        if queue.closed {
            return Ok(());
        }
        let len = frame.len();
        let full = queue.frames.len() >= OUTBOX_FRAMES
            || (queue.bytes > 0 && queue.bytes + len > OUTBOX_BYTES);
        if full {
            return Err(Behind);
        }
        queue.bytes += len;
        queue.frames.push_back(frame);
        drop(queue);
        self.shared.ready.wake();
        Ok(())
    }
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let mut queue = self.shared.lock();
        queue.senders -= 1;
        let last = queue.senders == 0;
        drop(queue);
        if last {
            self.shared.ready.wake();
        }
    }
}

impl OutboxReader {
    /// Waits for frames and moves up to `most` of them into `into`, all taken at once;
    /// 0 once closed (or every sender gone) and empty.
    pub async fn recv_many(&mut self, into: &mut Vec<Outbound>, most: usize) -> usize {
        std::future::poll_fn(|cx| {
            if let Some(taken) = self.take(into, most) {
                return Poll::Ready(taken);
            }
            self.shared.ready.register(cx.waker());
            // A frame queued between the look and the registration woke nobody.
            self.take(into, most).map_or(Poll::Pending, Poll::Ready)
        })
        .await
    }

    /// The next frame if one is queued (for tests and tools).
    pub fn try_recv(&mut self) -> Option<Outbound> {
        let mut one = Vec::with_capacity(1);
        self.take(&mut one, 1)?;
        one.pop()
    }

    /// Moves up to `most` queued frames into `into`: how many, 0 at the end, or `None`
    /// while nothing waits.
    fn take(&self, into: &mut Vec<Outbound>, most: usize) -> Option<usize> {
        let mut guard = self.shared.lock();
        let queue = &mut *guard;
        let taken = queue.frames.len().min(most);
        if taken == 0 {
            return (queue.closed || queue.senders == 0).then_some(0);
        }
        for frame in queue.frames.drain(..taken) {
            queue.bytes -= frame.len();
            into.push(frame);
        }
        Some(taken)
    }

    /// Takes no more frames; those queued can still be read.
    pub fn close(&mut self) {
        self.shared.lock().closed = true;
    }
}

impl Drop for OutboxReader {
    fn drop(&mut self) {
        // Nobody will write what waits: free it, and take nothing more.
        let mut queue = self.shared.lock();
        queue.closed = true;
        queue.bytes = 0;
        queue.frames = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next frame as a socket's writer takes it; `None` at the end.
    async fn next(rx: &mut OutboxReader) -> Option<Outbound> {
        let mut one = Vec::new();
        rx.recv_many(&mut one, 1).await;
        one.pop()
    }

    #[tokio::test]
    async fn an_outbox_holds_nothing_until_a_frame_waits_and_wakes_its_writer_for_one() {
        let (tx, mut rx) = outbox();
        assert_eq!(
            tx.shared.lock().frames.capacity(),
            0,
            "an idle socket's outbox"
        );
        let writer = tokio::spawn(async move { next(&mut rx).await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        tx.push(Outbound::from("one")).expect("room");
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), writer)
            .await
            .expect("woken")
            .expect("writer");
        assert_eq!(frame.as_deref(), Some("one"));
    }

    #[tokio::test]
    async fn a_closed_outbox_gives_what_was_queued_then_ends_and_drops_what_comes_after() {
        let (tx, mut rx) = outbox();
        tx.push(Outbound::from("queued")).expect("room");
        rx.close();
        tx.push(Outbound::from("late")).expect("taken silently");
        assert_eq!(next(&mut rx).await.as_deref(), Some("queued"));
        assert_eq!(next(&mut rx).await, None);
    }

    #[tokio::test]
    async fn an_outbox_ends_when_its_last_sender_goes() {
        let (tx, mut rx) = outbox();
        let second = tx.clone();
        drop(tx);
        second.push(Outbound::from("last")).expect("room");
        drop(second);
        assert_eq!(next(&mut rx).await.as_deref(), Some("last"));
        assert_eq!(next(&mut rx).await, None);
    }
}
