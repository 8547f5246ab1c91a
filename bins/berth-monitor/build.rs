fn main() {
    println!("cargo:rustc-link-arg-bin=berth-monitor=-no-pie");
}
