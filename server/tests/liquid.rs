//! Liquid an agent could send to make the server allocate or work without bound: every
//! template of the corpus is refused or renders to at most a chat message, none panics,
//! and no render ever holds more than a small amount of memory. The heap is measured by
//! dhat's allocator, so this file holds one test: nothing else allocates meanwhile.

use parlor_protocol::MAX_MESSAGE_CHARS;
use parlor_server::templates::{Context, Templates};

#[global_allocator]
static HEAP: dhat::Alloc = dhat::Alloc;

/// Templates an agent could send to make the server allocate or work without bound.
/// Each is refused or renders to at most a message, and none panics.
fn hostile() -> Vec<String> {
    let chain = |filter: &str, n: usize| {
        format!(
            "{{{{ customer.name{} }}}}",
            format!(" | {filter}").repeat(n)
        )
    };
    vec![
        "{{ 'now' | date: '%30000000Y' }}".into(),
        "{{ 'now' | date: '%-_0^#99999999999999999999Y' }}".into(),
        format!("{{{{ 'now' | date: '{}' }}}}", "%c".repeat(1900)),
        "{{ customer.name | replace: '', customer.name | replace: '', customer.name }}".into(),
        chain(
            "replace: 'r', 'rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr'",
            40,
        ),
        chain("append: case.subject", 150),
        chain("prepend: customer.name", 150),
        chain("upcase", 400),
        chain("truncate: 9223372036854775807", 3),
        chain("truncate: -9223372036854775808, '...'", 3),
        chain("truncatewords: 9223372036854775807", 3),
        chain("slice: -9223372036854775808, 9223372036854775807", 3),
        chain("slice: 9223372036854775807, -1", 3),
        "{{ 9223372036854775807 | plus: 1 }}{{ -9223372036854775808 | minus: 1 }}".into(),
        "{{ 9223372036854775807 | times: 9223372036854775807 }}".into(),
        "{{ 1 | divided_by: 0 }}{{ 1 | modulo: 0 }}{{ -9223372036854775808 | divided_by: -1 }}"
            .into(),
        "{{ -9223372036854775808 | abs }}{{ 1e308 | times: 1e308 | round: 9223372036854775807 }}"
            .into(),
        format!(
            "{}x{}",
            "{% if true %}".repeat(150),
            "{% endif %}".repeat(150)
        ),
        format!("{}x", "{% if true %}".repeat(300)),
        format!(
            "{}x{}",
            "{% case 1 %}{% when 1 %}".repeat(100),
            "{% endcase %}".repeat(100)
        ),
        format!(
            "{{{{ customer.name{} }}}}",
            " | default: customer.name".repeat(140)
        ),
        "{{ customer.name | append: customer.name | append: customer.name }}".repeat(59),
        "{{".repeat(2000),
        "{%".repeat(2000),
    ]
}

#[test]
fn hostile_liquid_is_refused_or_bounded_and_never_holds_much_memory() {
    let profiler = dhat::Profiler::builder().testing().build();
    let templates = Templates::new().expect("the chat dialect builds");
    let context = Context {
        customer_name: "Grace Brewster Hopper".into(),
        customer_email: Some("grace@example.com".into()),
        agent_name: "Ada Lovelace".into(),
        case_id: 42,
        case_subject: "Order 1042 is late".into(),
    };
    let corpus = hostile();
    let before = dhat::HeapStats::get().curr_bytes;
    for template in &corpus {
        let length = template.chars().count();
        assert!(
            length <= MAX_MESSAGE_CHARS,
            "a message, not {length} chars: {template:.80}"
        );
        if let Ok(output) = templates.render(template, &context) {
            assert!(
                output.chars().count() <= MAX_MESSAGE_CHARS,
                "{template}: {} chars",
                output.chars().count()
            );
        }
    }
    // The most ever held at once while rendering, above what was held before.
    let peak = dhat::HeapStats::get().max_bytes.saturating_sub(before);
    assert!(peak < 1 << 20, "a render held {peak} bytes at once");
    drop(profiler);
}
