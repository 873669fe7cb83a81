//! Alerts for agents: a desktop notification when the console is not in view and a short
//! tone, for a screen pop and for a customer message in a background tab. Browsers block
//! both until the agent allows them, so the console shows an **Enable alerts** button
//! until they are on.

use std::cell::RefCell;

use web_sys::{
    AudioContext, AudioContextState, Notification, NotificationOptions, NotificationPermission,
};

thread_local! {
    // One audio context for the page, made (and so allowed to play) by a click.
    static AUDIO: RefCell<Option<AudioContext>> = const { RefCell::new(None) };
}

/// Whether both the tone and notifications are allowed.
pub fn enabled() -> bool {
    let sound = AUDIO.with(|a| {
        a.borrow()
            .as_ref()
            .is_some_and(|ctx| ctx.state() == AudioContextState::Running)
    });
    sound && Notification::permission() == NotificationPermission::Granted
}

/// Called from the agent's click: unlocks sound and asks for notifications. The
/// returned promise settles when the agent has answered the browser's question.
pub fn enable() -> Option<js_sys::Promise> {
    AUDIO.with(|a| {
        let mut audio = a.borrow_mut();
        if audio.is_none() {
            *audio = AudioContext::new().ok();
        }
        if let Some(ctx) = audio.as_ref() {
            let _ = ctx.resume();
        }
    });
    if Notification::permission() == NotificationPermission::Default {
        return Notification::request_permission().ok();
    }
    None
}

/// A short two-note tone, when sound is allowed.
pub fn tone() {
    AUDIO.with(|a| {
        let audio = a.borrow();
        let Some(ctx) = audio.as_ref() else { return };
        let now = ctx.current_time();
        for (i, frequency) in [880.0_f32, 1175.0].into_iter().enumerate() {
            let (Ok(oscillator), Ok(gain)) = (ctx.create_oscillator(), ctx.create_gain()) else {
                return;
            };
            let start = now + i as f64 * 0.12;
            oscillator.frequency().set_value(frequency);
            gain.gain().set_value(0.15);
            let _ = gain.gain().linear_ramp_to_value_at_time(0.0, start + 0.11);
            let _ = oscillator.connect_with_audio_node(&gain);
            let _ = gain.connect_with_audio_node(&ctx.destination());
            let _ = oscillator.start_with_when(start);
            let _ = oscillator.stop_with_when(start + 0.12);
        }
    });
}

/// Whether the console is out of view (another tab or window in front).
fn hidden() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.hidden())
}

/// A tone, and a desktop notification when the console is out of view.
pub fn alert(title: &str, body: &str) {
    tone();
    if hidden() && Notification::permission() == NotificationPermission::Granted {
        let options = NotificationOptions::new();
        options.set_body(body);
        options.set_tag("parlor");
        let _ = Notification::new_with_options(title, &options);
    }
}
