fn main() -> std::process::ExitCode {
    tpa_cli::transformer::main()
}
