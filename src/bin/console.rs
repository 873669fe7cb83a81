fn main() {
    leptos::mount::mount_to_body(parlor_app::console::Console);
}
