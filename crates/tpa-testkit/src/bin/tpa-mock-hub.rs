//! Serves a model directory as a Hub repository on 127.0.0.1 (the tests'
//! mock Hub), for download benchmarks against other clients.
//!
//! ```text
//! tpa-mock-hub --repo org/name data/models/bench-llama-bf16
//! ```
//!
//! Prints the endpoint (for HF_ENDPOINT) on one line, then serves until killed.
//! `*.safetensors`, `*.bin` and files over 10 MiB are served as LFS files
//! (through the CDN redirect), the rest as git files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use tpa_testkit::mock_hub::{MockFile, MockHub, MockRepo};

#[derive(Parser)]
#[command(about = "Serve a model directory as a Hub repository on 127.0.0.1")]
struct Args {
    /// Repository id to serve it as.
    #[arg(long, default_value = "org/model")]
    repo: String,
    /// Serve only the header of each .safetensors file (files as `tpa-fixture
    /// --headers-only` writes them): Range reads of the header work, downloads do not.
    #[arg(long)]
    headers_only: bool,
    /// Limit the bodies sent to this many bytes per second, over all connections.
    #[arg(long, value_name = "BYTES")]
    rate: Option<usize>,
    /// The directory.
    dir: PathBuf,
}

/// The first 8 + N bytes of a safetensors file: its header.
fn header_of(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)?;
    let mut header = vec![0u8; u64::from_le_bytes(len) as usize];
    file.read_exact(&mut header)?;
    Ok([&len[..], &header].concat())
}

fn files(
    root: &Path,
    dir: &Path,
    headers_only: bool,
    out: &mut Vec<MockFile>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files(root, &path, headers_only, out)?;
            continue;
        }
        let name = path
            .strip_prefix(root)
            .map_err(std::io::Error::other)?
            .to_string_lossy()
            .replace('\\', "/");
        if name.starts_with('.') {
            continue;
        }
        if headers_only && name.ends_with(".safetensors") {
            let size = std::fs::metadata(&path)?.len() as usize;
            out.push(MockFile::lfs_start(&name, header_of(&path)?, size));
            continue;
        }
        let content = std::fs::read(&path)?;
        let lfs =
            name.ends_with(".safetensors") || name.ends_with(".bin") || content.len() > 10 << 20;
        out.push(if lfs {
            MockFile::lfs(&name, content)
        } else {
            MockFile::git(&name, content)
        });
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut served = Vec::new();
    if let Err(e) = files(&args.dir, &args.dir, args.headers_only, &mut served) {
        eprintln!("error: {}: {e}", args.dir.display());
        return ExitCode::from(1);
    }
    let hub = MockHub::start();
    if let Some(rate) = args.rate {
        hub.set_rate(rate);
    }
    hub.add_repo(MockRepo::new(&args.repo, served));
    println!("{}", hub.endpoint());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
