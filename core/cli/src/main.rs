fn main() {
    std::process::exit(condlock_cli::run(std::env::args_os().collect()))
}
