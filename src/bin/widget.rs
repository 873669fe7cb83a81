fn main() {
    parlor_app::widget::start();
}
