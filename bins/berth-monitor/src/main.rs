//! berth-monitor: the per-container monitor process (see the library's `monitor` module).
fn main() {
    berth_monitor::monitor::main()
}
