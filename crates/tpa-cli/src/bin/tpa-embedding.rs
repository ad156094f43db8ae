fn main() -> std::process::ExitCode {
    tpa_cli::not_yet_implemented("tpa-embedding", "issue 5")
}
