//! Alerts for agents, so that no screen pop goes unnoticed: a short tone, a flashing
//! title and a badge on the tab's icon while a screen pop is up, and a desktop
//! notification when the console is not in view. Browsers allow sound only after a
//! click or a key on the page, so the first one (signing in, the routing switch,
//! anything) unlocks it; desktop notifications need the agent's yes once, one click on
//! the top bar's button.

use std::cell::RefCell;

use gloo::events::EventListener;
use gloo::timers::callback::Interval;
use wasm_bindgen::JsCast;
use web_sys::{
    AudioContext, AudioContextState, Notification, NotificationOptions, NotificationPermission,
};

thread_local! {
    // One audio context for the page, made (and so allowed to play) by a click.
    static AUDIO: RefCell<Option<AudioContext>> = const { RefCell::new(None) };
    // The title flashing while a screen pop is up; dropping it stops the flashing.
    static FLASHING: RefCell<Option<Interval>> = const { RefCell::new(None) };
    // The title between calls for attention (it counts unread chats).
    static RESTING: RefCell<String> = RefCell::new(TITLE.to_owned());
    // The page's own icon (`console.html`), kept while the badged one is shown.
    static ICON: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The page's title when nothing calls for attention.
pub const TITLE: &str = "Parlor console";

/// Sets the title the page shows when no screen pop calls for attention.
pub fn rest_title(title: String) {
    let flashing = FLASHING.with(|f| f.borrow().is_some());
    if !flashing {
        set_title(&title);
    }
    RESTING.with(|r| *r.borrow_mut() = title);
}

fn resting() -> String {
    RESTING.with(|r| r.borrow().clone())
}

/// The page's icon (a speech bubble in Parlor's blue) with a red badge: a screen pop is
/// waiting.
const ICON_BADGED: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' \
     viewBox='0 0 32 32'%3E%3Cpath d='M4 6a4 4 0 0 1 4-4h16a4 4 0 0 1 4 4v12a4 4 0 0 1-4 \
     4H13l-7 6v-6H8a4 4 0 0 1-4-4z' fill='%232563eb'/%3E%3Ccircle cx='24' cy='8' r='8' \
     fill='%23d93025'/%3E%3C/svg%3E";

/// Whether the tone can play.
pub fn sound_on() -> bool {
    AUDIO.with(|a| {
        a.borrow()
            .as_ref()
            .is_some_and(|ctx| ctx.state() == AudioContextState::Running)
    })
}

/// Whether desktop notifications are allowed.
pub fn notifications_on() -> bool {
    Notification::permission() == NotificationPermission::Granted
}

/// Whether the browser would still ask the agent about notifications (not refused).
pub fn notifications_askable() -> bool {
    Notification::permission() == NotificationPermission::Default
}

/// From a click or key: allows the tone from now on.
pub fn unlock_sound() {
    AUDIO.with(|a| {
        let mut audio = a.borrow_mut();
        if audio.is_none() {
            *audio = AudioContext::new().ok();
        }
        if let Some(ctx) = audio.as_ref()
            && ctx.state() != AudioContextState::Running
        {
            let _ = ctx.resume();
        }
    });
}

/// Unlocks sound on the page's first click or key (and again after the browser
/// suspended it), then calls `unlocked` so the top bar can update.
pub fn unlock_on_first_gesture(unlocked: impl Fn() + 'static) {
    let Some(document) = document() else {
        return;
    };
    let unlocked = std::rc::Rc::new(unlocked);
    for event in ["pointerdown", "keydown"] {
        let unlocked = unlocked.clone();
        // For the page's whole life.
        EventListener::new(&document, event, move |_| {
            if !sound_on() {
                unlock_sound();
                unlocked();
            }
        })
        .forget();
    }
}

/// From the agent's click: unlocks sound and asks for desktop notifications. The
/// returned promise settles when the agent has answered the browser's question.
pub fn enable() -> Option<js_sys::Promise> {
    unlock_sound();
    if notifications_askable() {
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

fn document() -> Option<web_sys::Document> {
    web_sys::window()?.document()
}

/// Whether the console is out of view (another tab or window in front).
fn hidden() -> bool {
    document().is_some_and(|d| d.hidden())
}

/// A tone, and a desktop notification when the console is out of view.
pub fn alert(title: &str, body: &str) {
    tone();
    if hidden() && notifications_on() {
        let options = NotificationOptions::new();
        options.set_body(body);
        options.set_tag("parlor");
        let _ = Notification::new_with_options(title, &options);
    }
}

fn set_title(title: &str) {
    if let Some(document) = document() {
        document.set_title(title);
    }
}

fn icon_link() -> Option<web_sys::HtmlLinkElement> {
    document()?
        .query_selector("link[rel='icon']")
        .ok()??
        .dyn_into()
        .ok()
}

/// Shows the badged icon, keeping the page's own to put back.
fn badge_icon() {
    let Some(link) = icon_link() else { return };
    ICON.with(|icon| {
        icon.borrow_mut().get_or_insert_with(|| link.href());
    });
    link.set_href(ICON_BADGED);
}

/// Puts the page's own icon back.
fn unbadge_icon() {
    let (Some(link), Some(own)) = (icon_link(), ICON.with(|icon| icon.borrow().clone())) else {
        return;
    };
    link.set_href(&own);
}

/// While a screen pop is up: the title alternates with `call` every second and the
/// tab's icon carries a badge, so the pop is seen from another tab too.
pub fn call_attention(call: &str) {
    let call = call.to_owned();
    let mut on = true;
    set_title(&call);
    badge_icon();
    let flashing = Interval::new(1_000, move || {
        on = !on;
        set_title(&if on { call.clone() } else { resting() });
    });
    FLASHING.with(|f| *f.borrow_mut() = Some(flashing));
}

/// The screen pop went: the title and the icon are themselves again.
pub fn calm() {
    FLASHING.with(|f| f.borrow_mut().take());
    set_title(&resting());
    unbadge_icon();
}
