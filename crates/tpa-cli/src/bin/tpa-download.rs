fn main() -> std::process::ExitCode {
    tpa_cli::download::main()
}
