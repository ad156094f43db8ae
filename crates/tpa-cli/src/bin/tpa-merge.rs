fn main() -> std::process::ExitCode {
    tpa_cli::merge::main()
}
