fn main() -> std::process::ExitCode {
    tpa_cli::report::main()
}
