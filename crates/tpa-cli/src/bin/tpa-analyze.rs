fn main() -> std::process::ExitCode {
    tpa_cli::analyze::main()
}
