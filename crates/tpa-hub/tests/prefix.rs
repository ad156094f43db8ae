//! `read_prefix` against the mock Hub: a header of unknown length read in
//! doubling Range requests, and refused past the most it may read.

use tpa_hub::{Client, HubError, RemoteFile, RepoId, read_prefix};
use tpa_testkit::mock_hub::{MockFile, MockHub, MockRepo};

/// Reads the prefix of a 1000-byte file whose "header" ends at byte `ends`.
fn read(ends: usize, first: u64, max: u64) -> Result<(usize, u32), HubError> {
    let hub = MockHub::start();
    let bytes: Vec<u8> = (0..1000).map(|i| (i % 251) as u8).collect();
    let repo = MockRepo::new("org/m", vec![MockFile::lfs("m.gguf", bytes.clone())]);
    hub.add_repo(repo.clone());
    let client = Client::new(&hub.endpoint(), None);
    let id: RepoId = "org/m".parse().unwrap();
    let file = RemoteFile {
        path: "m.gguf".into(),
        size: 1000,
        git_oid: String::new(),
        sha256: None,
    };
    read_prefix(
        &client,
        &id,
        &repo.commit,
        &file,
        first..=max,
        &|_, _| {},
        |got| {
            // What arrived is the file's start, whatever the number of reads.
            assert_eq!(got, &bytes[..got.len()]);
            Ok::<_, HubError>((got.len() >= ends).then_some(got.len()))
        },
    )
}

#[test]
fn a_longer_header_is_read_in_doubling_requests() {
    // 16, then 32, 64, 128 bytes: four requests for a 100-byte header.
    assert_eq!(read(100, 16, 1 << 20).unwrap(), (128, 4));
    // One request when the first read holds it; never past the file's end.
    assert_eq!(read(10, 16, 1 << 20).unwrap(), (16, 1));
    assert_eq!(read(1000, 600, 1 << 20).unwrap(), (1000, 2));
}

#[test]
fn a_header_past_the_most_read_or_the_file_is_an_error() {
    let err = read(500, 16, 200).unwrap_err().to_string();
    assert!(err.contains("goes on past 200 B"), "{err}");
    let err = read(2000, 16, 1 << 20).unwrap_err().to_string();
    assert!(err.contains("the whole file was read"), "{err}");
}
