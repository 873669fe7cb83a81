//! The console's routing switch as the agent sees it. A click shows at once: waiting
//! for the server's echo made a slow answer look like a click that did nothing. The
//! server still decides: its echo confirms, a refusal rolls the switch back, and a
//! change the server made itself (a screen pop ignored or disabled) wins over a click
//! still on its way.

use crate::RoutingChange;

/// The routing switch: what the server last said, and a click it has not answered yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoutingSwitch {
    /// The state the server last confirmed.
    confirmed: bool,
    /// The state the agent clicked, until the server answers it.
    asked: Option<bool>,
}

impl RoutingSwitch {
    /// What the switch shows.
    pub fn shown(&self) -> bool {
        self.asked.unwrap_or(self.confirmed)
    }

    /// Whether a click is still waiting for the server's answer.
    pub fn is_pending(&self) -> bool {
        self.asked.is_some()
    }

    /// The agent clicked the switch to `on`: shown at once; send the change.
    pub fn click(&mut self, on: bool) {
        self.asked = Some(on);
    }

    /// The server says the agent's routing is `on`, and why.
    pub fn server_says(&mut self, on: bool, change: RoutingChange) {
        self.confirmed = on;
        match change {
            // The echo of a click. A later click's echo is still on its way when this
            // one is not what the agent asked last: keep showing the last click.
            RoutingChange::Switched => {
                if self.asked == Some(on) {
                    self.asked = None;
                }
            }
            // The server switched routing off on its own: that is the state now.
            RoutingChange::IgnoredOffer | RoutingChange::DisabledFromOffer => self.asked = None,
        }
    }

    /// A (re)connected socket was welcomed with the agent's routing `on`. Returns the
    /// click to send again, if one was lost with the old connection.
    pub fn welcomed(&mut self, on: bool) -> Option<bool> {
        self.confirmed = on;
        match self.asked {
            Some(asked) if asked != on => Some(asked),
            _ => {
                self.asked = None;
                None
            }
        }
    }

    /// The server refused the click: show what it last confirmed. Returns whether a
    /// click was waiting (so the refusal was about it).
    pub fn refused(&mut self) -> bool {
        self.asked.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_click_shows_at_once_and_the_echo_confirms_it() {
        let mut switch = RoutingSwitch::default();
        switch.click(true);
        assert!(switch.shown());
        assert!(switch.is_pending());
        switch.server_says(true, RoutingChange::Switched);
        assert!(switch.shown());
        assert!(!switch.is_pending());
    }

    #[test]
    fn a_refused_click_rolls_back_to_what_the_server_said() {
        let mut switch = RoutingSwitch::default();
        switch.click(true);
        assert!(switch.refused());
        assert!(!switch.shown());
        assert!(!switch.refused(), "nothing was waiting any more");
    }

    #[test]
    fn quick_clicks_show_the_last_one_while_the_first_echo_arrives() {
        let mut switch = RoutingSwitch::default();
        switch.click(true);
        switch.click(false);
        switch.server_says(true, RoutingChange::Switched);
        assert!(!switch.shown(), "the second click is still on its way");
        switch.server_says(false, RoutingChange::Switched);
        assert!(!switch.shown());
        assert!(!switch.is_pending());
    }

    #[test]
    fn an_ignored_screen_pop_switches_off_even_over_a_click() {
        let mut switch = RoutingSwitch::default();
        switch.server_says(true, RoutingChange::Switched);
        switch.click(true);
        switch.server_says(false, RoutingChange::IgnoredOffer);
        assert!(!switch.shown());
        assert!(!switch.is_pending());
    }

    #[test]
    fn a_click_lost_with_the_connection_is_sent_again_after_the_welcome() {
        let mut switch = RoutingSwitch::default();
        switch.click(true);
        assert_eq!(switch.welcomed(false), Some(true));
        assert!(switch.shown());
        switch.server_says(true, RoutingChange::Switched);
        assert!(!switch.is_pending());
    }

    #[test]
    fn a_welcome_that_already_has_the_click_settles_it() {
        let mut switch = RoutingSwitch::default();
        switch.click(true);
        assert_eq!(switch.welcomed(true), None);
        assert!(switch.shown());
        assert!(!switch.is_pending());
    }
}
