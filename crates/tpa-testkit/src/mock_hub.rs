//! A Hugging Face Hub stand-in on 127.0.0.1 for download tests.
//!
//! It serves the three endpoints a snapshot download uses (revision, tree,
//! resolve) with the Hub's headers and error codes, redirects LFS files to a
//! "CDN" under another host name (`localhost`), honours `Range`, and can
//! inject faults per file. Every request is logged so that tests can assert
//! on what was sent (Range, Authorization, bytes served).
//!
//! Written on `std::net` rather than an HTTP server crate: the faults
//! (a connection cut mid-body, a stall, a body shorter than announced) need
//! control of the raw socket.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Who may read a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Public,
    /// Visible only with this token; otherwise it does not exist.
    Private {
        token: String,
    },
    /// Metadata is public; files need this token (the licence accepted).
    Gated {
        token: String,
    },
}

/// One file of a mock repository. The content is shared, not copied, per
/// request, and its checksums are computed once, so that the mock can also
/// serve multi-GB files to benchmarks.
#[derive(Debug, Clone)]
pub struct MockFile {
    pub path: String,
    pub content: Arc<Vec<u8>>,
    /// Stored in LFS: listed with a sha256 and served through the CDN.
    pub lfs: bool,
    sha256: String,
    git_oid: String,
    /// The size listed when only the start of the file is held.
    declared_size: Option<usize>,
}

impl MockFile {
    /// A file kept in git (configs, tokenizers).
    pub fn git(path: &str, content: impl Into<Vec<u8>>) -> MockFile {
        MockFile::new(path, content.into(), false)
    }

    /// A file kept in LFS (weights).
    pub fn lfs(path: &str, content: impl Into<Vec<u8>>) -> MockFile {
        MockFile::new(path, content.into(), true)
    }

    /// An LFS file of `size` bytes of which only `start` is held (e.g. a
    /// safetensors header, for header-only reads of a model too big to
    /// build): the rest reads as zeros, in ranges of up to 16 MiB.
    pub fn lfs_start(path: &str, start: impl Into<Vec<u8>>, size: usize) -> MockFile {
        let mut file = MockFile::new(path, start.into(), true);
        file.declared_size = Some(size);
        file
    }

    /// The listed size.
    pub fn size(&self) -> usize {
        self.declared_size.unwrap_or(self.content.len())
    }

    fn new(path: &str, content: Vec<u8>, lfs: bool) -> MockFile {
        let mut blob = Sha1::new();
        blob.update(format!("blob {}\0", content.len()).as_bytes());
        blob.update(&content);
        MockFile {
            path: path.into(),
            sha256: hex(&Sha256::digest(&content)),
            git_oid: hex(&blob.finalize()),
            content: Arc::new(content),
            lfs,
            declared_size: None,
        }
    }

    pub fn sha256(&self) -> String {
        self.sha256.clone()
    }

    pub fn git_oid(&self) -> String {
        self.git_oid.clone()
    }
}

/// The files of a model directory (not its subfolders) as a repository
/// holds them: `.safetensors` in LFS, the rest in git.
pub fn files_of(dir: &std::path::Path) -> std::io::Result<Vec<MockFile>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_file() {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let content = std::fs::read(&path)?;
        files.push(if name.ends_with(".safetensors") {
            MockFile::lfs(&name, content)
        } else {
            MockFile::git(&name, content)
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A repository: id, one commit (reachable as `main` and by its sha), files.
#[derive(Debug, Clone)]
pub struct MockRepo {
    pub id: String,
    pub commit: String,
    pub access: Access,
    pub files: Vec<MockFile>,
    /// Extra tree entries that do not match a file's content, e.g. a size
    /// or checksum that lies, or an unsafe name: (path, size, sha256).
    pub listed_only: Vec<(String, u64, String)>,
}

impl MockRepo {
    /// A public repository whose commit sha is derived from its id.
    pub fn new(id: &str, files: Vec<MockFile>) -> MockRepo {
        MockRepo {
            id: id.into(),
            commit: hex(&Sha1::digest(id.as_bytes())),
            access: Access::Public,
            files,
            listed_only: Vec::new(),
        }
    }

    pub fn with_access(mut self, access: Access) -> MockRepo {
        self.access = access;
        self
    }
}

/// A fault injected into the serving of one file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The next request is served as usual, so that the fault queued after
    /// it hits the request after (e.g. the download after a header read).
    Pass,
    /// The next `n` requests get 503.
    Unavailable(usize),
    /// The next `n` requests get 429 (rate limited).
    RateLimited(usize),
    /// Every request gets this many bytes more than the file has.
    LongBody(usize),
    /// The next request announces the full length, sends this many bytes
    /// and closes the connection.
    DropAfter(usize),
    /// The next request sends this many bytes and then hangs (for a test
    /// that kills the client).
    StallAfter(usize),
    /// Every request gets the content with this byte flipped.
    FlipByte(usize),
    /// The next request announces and sends only this many bytes.
    ShortBody(usize),
    /// The next request ignores Range and answers 200 with everything.
    IgnoreRange,
    /// The next request answers a Range with 206 and the whole file.
    WrongRange,
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub host: String,
    pub path: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
    pub status: u16,
    /// Body bytes written to the socket.
    pub body_bytes: usize,
}

#[derive(Default)]
struct State {
    repos: Vec<MockRepo>,
    faults: HashMap<String, Vec<Fault>>,
    log: Vec<Logged>,
    page_size: Option<usize>,
    refused_tokens: Vec<String>,
    /// Body bytes per second over all connections, when limited.
    rate: Option<usize>,
    /// When the limited link is free again.
    link_free: Option<std::time::Instant>,
}

/// The running server; it lives until the test process ends.
pub struct MockHub {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl MockHub {
    /// Starts a server on a free port of 127.0.0.1.
    pub fn start() -> MockHub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, port, &state));
            }
        });
        MockHub { port, state }
    }

    /// The endpoint to put in HF_ENDPOINT.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn add_repo(&self, repo: MockRepo) {
        self.lock().repos.push(repo);
    }

    /// Injects `fault` into the serving of `path` (in any repository).
    pub fn fault(&self, path: &str, fault: Fault) {
        self.lock()
            .faults
            .entry(path.into())
            .or_default()
            .push(fault);
    }

    /// Splits tree listings into pages of `n` entries.
    pub fn set_page_size(&self, n: usize) {
        self.lock().page_size = Some(n);
    }

    /// Sends bodies at most `bytes_per_second` in all, shared between the
    /// connections as a slow link would (for tests that overlap downloads
    /// with work).
    pub fn set_rate(&self, bytes_per_second: usize) {
        self.lock().rate = Some(bytes_per_second.max(1));
    }

    /// Answers requests with this token as the Hub does an invalid or
    /// expired one: 401 without an error code.
    pub fn refuse_token(&self, token: &str) {
        self.lock().refused_tokens.push(token.into());
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.lock().log.clone()
    }

    /// Requests whose path ends with `suffix`.
    pub fn requests_for(&self, suffix: &str) -> Vec<Logged> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with(suffix))
            .collect()
    }

    /// Forgets the log.
    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Request {
    method: String,
    path: String,
    query: String,
    headers: HashMap<String, String>,
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Request {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
    })
}

/// An answer before it is written.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    /// The bytes of `range` within `bytes` are the body.
    bytes: Arc<Vec<u8>>,
    range: std::ops::Range<usize>,
    /// Send only this many body bytes, then act as `after_cut` says.
    cut: Option<(usize, Cut)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Cut {
    Close,
    Stall,
}

impl Answer {
    fn new(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            bytes: Arc::new(Vec::new()),
            range: 0..0,
            cut: None,
        }
    }

    fn header(mut self, k: &str, v: impl Into<String>) -> Answer {
        self.headers.push((k.into(), v.into()));
        self
    }

    fn json(self, value: &serde_json::Value) -> Answer {
        let mut a = self.header("Content-Type", "application/json");
        a.set_body(Arc::new(value.to_string().into_bytes()));
        a
    }

    fn set_body(&mut self, bytes: Arc<Vec<u8>>) {
        self.range = 0..bytes.len();
        self.bytes = bytes;
    }

    fn body(&self) -> &[u8] {
        &self.bytes[self.range.clone()]
    }

    fn error(status: u16, code: &str) -> Answer {
        Answer::new(status)
            .header("X-Error-Code", code)
            .header("X-Error-Message", format!("mock: {code}"))
    }
}

fn serve(mut stream: TcpStream, port: u16, state: &Mutex<State>) {
    let Some(request) = read_request(&stream) else {
        return;
    };
    let answer = route(&request, port, state);
    let host = request.headers.get("host").cloned().unwrap_or_default();
    let mut head = format!("HTTP/1.1 {} Mock\r\n", answer.status);
    for (k, v) in &answer.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        answer.body().len()
    ));
    let send = match answer.cut {
        Some((n, _)) => n.min(answer.body().len()),
        None => answer.body().len(),
    };
    let send = if request.method == "HEAD" { 0 } else { send };
    let _ = stream.write_all(head.as_bytes());
    write_at_rate(&mut stream, &answer.body()[..send], state);
    let _ = stream.flush();
    {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.log.push(Logged {
            host,
            path: request.path.clone(),
            range: request.headers.get("range").cloned(),
            authorization: request.headers.get("authorization").cloned(),
            status: answer.status,
            body_bytes: send,
        });
    }
    if let Some((_, Cut::Stall)) = answer.cut {
        std::thread::sleep(Duration::from_secs(120));
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Writes `body`; when the link's rate is limited, in pieces of a tenth of
/// a second's worth, each waiting for its turn on the shared link.
fn write_at_rate(stream: &mut TcpStream, body: &[u8], state: &Mutex<State>) {
    let Some(rate) = state.lock().unwrap_or_else(|p| p.into_inner()).rate else {
        let _ = stream.write_all(body);
        return;
    };
    for piece in body.chunks((rate / 10).max(1)) {
        let due = {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            let now = std::time::Instant::now();
            let start = s.link_free.map_or(now, |free| free.max(now));
            let end = start + Duration::from_secs_f64(piece.len() as f64 / rate as f64);
            s.link_free = Some(end);
            end
        };
        if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
            std::thread::sleep(wait);
        }
        if stream.write_all(piece).is_err() {
            return;
        }
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(request: &Request, port: u16, state: &Mutex<State>) -> Answer {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    let auth = request
        .headers
        .get("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::to_owned);
    if auth.as_ref().is_some_and(|t| s.refused_tokens.contains(t)) {
        return Answer::new(401).header(
            "X-Error-Message",
            "Invalid credentials in Authorization header",
        );
    }
    if let Some(sha) = request.path.strip_prefix("/cdn/") {
        let found = s
            .repos
            .iter()
            .find_map(|r| r.files.iter().find(|f| f.lfs && f.sha256() == sha).cloned());
        return match found {
            Some(file) => content(&mut s, &file, request),
            None => Answer::new(404),
        };
    }
    if let Some(rest) = request.path.strip_prefix("/api/models/") {
        for (marker, tree) in [("/revision/", false), ("/tree/", true)] {
            if let Some((id, rev)) = rest.split_once(marker) {
                let repo = match visible_repo(&s, id, auth.as_deref()) {
                    Ok(r) => r.clone(),
                    Err(a) => return a,
                };
                let rev = decode(rev);
                if rev != "main" && rev != repo.commit {
                    return Answer::error(404, "RevisionNotFound");
                }
                return if tree {
                    tree_page(&s, &repo, port, &rev, &request.query)
                } else {
                    let siblings: Vec<_> = repo
                        .files
                        .iter()
                        .map(|f| serde_json::json!({ "rfilename": f.path }))
                        .collect();
                    Answer::new(200).json(&serde_json::json!({
                        "id": repo.id, "sha": repo.commit, "siblings": siblings
                    }))
                };
            }
        }
        return Answer::new(404);
    }
    if let Some((id, rest)) = request.path[1..].split_once("/resolve/") {
        let repo = match visible_repo(&s, id, auth.as_deref()) {
            Ok(r) => r.clone(),
            Err(a) => return a,
        };
        if let Access::Gated { token } = &repo.access {
            match auth.as_deref() {
                None => return Answer::error(401, "GatedRepo"),
                Some(t) if t != token => return Answer::error(403, "GatedRepo"),
                Some(_) => {}
            }
        }
        let Some((rev, path)) = rest.split_once('/') else {
            return Answer::new(404);
        };
        if decode(rev) != "main" && decode(rev) != repo.commit {
            return Answer::error(404, "RevisionNotFound");
        }
        let path = path.split('/').map(decode).collect::<Vec<_>>().join("/");
        let Some(file) = repo.files.iter().find(|f| f.path == path).cloned() else {
            return Answer::error(404, "EntryNotFound");
        };
        if file.lfs {
            return Answer::new(302)
                .header(
                    "Location",
                    format!("http://localhost:{port}/cdn/{}", file.sha256()),
                )
                .header("X-Repo-Commit", repo.commit.clone())
                .header("X-Linked-Etag", format!("\"{}\"", file.sha256()))
                .header("X-Linked-Size", file.size().to_string());
        }
        return content(&mut s, &file, request)
            .header("X-Repo-Commit", repo.commit.clone())
            .header("ETag", format!("\"{}\"", file.git_oid()));
    }
    Answer::new(404)
}

/// The repository `id` as the caller may see it, or the Hub's answer.
fn visible_repo<'a>(s: &'a State, id: &str, auth: Option<&str>) -> Result<&'a MockRepo, Answer> {
    let hidden = || Answer::error(if auth.is_some() { 404 } else { 401 }, "RepoNotFound");
    let repo = s.repos.iter().find(|r| r.id == id).ok_or_else(hidden)?;
    match &repo.access {
        Access::Private { token } if auth != Some(token.as_str()) => Err(hidden()),
        _ => Ok(repo),
    }
}

fn tree_page(s: &State, repo: &MockRepo, port: u16, rev: &str, query: &str) -> Answer {
    let mut entries = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    for f in &repo.files {
        let mut prefix = String::new();
        for part in f
            .path
            .split('/')
            .rev()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            prefix = if prefix.is_empty() {
                part.to_owned()
            } else {
                format!("{prefix}/{part}")
            };
            if !dirs.contains(&prefix) {
                dirs.push(prefix.clone());
                entries.push(
                    serde_json::json!({"type": "directory", "oid": "0", "size": 0, "path": prefix}),
                );
            }
        }
        let mut e = serde_json::json!({
            "type": "file", "oid": f.git_oid(), "size": f.size(), "path": f.path
        });
        if f.lfs {
            e["lfs"] = serde_json::json!({"oid": f.sha256(), "size": f.size(), "pointerSize": 134});
        }
        entries.push(e);
    }
    for (path, size, sha) in &repo.listed_only {
        entries.push(serde_json::json!({
            "type": "file", "oid": "0".repeat(40), "size": size, "path": path,
            "lfs": {"oid": sha, "size": size, "pointerSize": 134}
        }));
    }
    let cursor: usize = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("cursor="))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let page = s.page_size.unwrap_or(usize::MAX);
    let end = cursor.saturating_add(page).min(entries.len());
    let mut answer = Answer::new(200).json(&serde_json::Value::Array(
        entries[cursor.min(end)..end].to_vec(),
    ));
    if end < entries.len() {
        answer = answer.header(
            "Link",
            format!(
                "<http://127.0.0.1:{port}/api/models/{}/tree/{rev}?recursive=true&cursor={end}>; rel=\"next\"",
                repo.id
            ),
        );
    }
    answer
}

/// A file's bytes, honouring Range and the faults set for it.
fn content(s: &mut State, file: &MockFile, request: &Request) -> Answer {
    let faults = s.faults.entry(file.path.clone()).or_default();
    let mut body = Arc::clone(&file.content);
    for fault in faults.iter() {
        match *fault {
            Fault::FlipByte(at) if at < body.len() => {
                let mut bytes = body.to_vec();
                bytes[at] ^= 0xff;
                body = Arc::new(bytes);
            }
            Fault::LongBody(extra) => {
                let mut bytes = body.to_vec();
                bytes.extend(std::iter::repeat_n(0u8, extra));
                body = Arc::new(bytes);
            }
            _ => {}
        }
    }
    let permanent = |f: &Fault| matches!(f, Fault::FlipByte(_) | Fault::LongBody(_));
    // The first one-shot fault applies to this request.
    let once = faults.iter().position(|f| !permanent(f)).map(|i| {
        let f = faults[i];
        match f {
            Fault::Unavailable(n) if n > 1 => faults[i] = Fault::Unavailable(n - 1),
            Fault::RateLimited(n) if n > 1 => faults[i] = Fault::RateLimited(n - 1),
            _ => {
                faults.remove(i);
            }
        }
        f
    });
    // Retry-After keeps the tests fast; the backoff itself is unit-tested.
    match once {
        Some(Fault::Unavailable(_)) => return Answer::new(503).header("Retry-After", "0"),
        Some(Fault::RateLimited(_)) => return Answer::new(429).header("Retry-After", "0"),
        _ => {}
    }
    let total = file.declared_size.unwrap_or(body.len());
    // `bytes=START-` or `bytes=START-END` (END inclusive).
    let range = request
        .headers
        .get("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(start, end)| {
            let start = start.parse::<usize>().ok()?;
            let end = match end {
                "" => None,
                e => Some(e.parse::<usize>().ok()?),
            };
            Some((start, end))
        });
    let mut answer = match range {
        Some(_) if once == Some(Fault::WrongRange) => Answer::new(206).header(
            "Content-Range",
            format!("bytes 0-{}/{total}", total.saturating_sub(1)),
        ),
        Some((start, end)) if once != Some(Fault::IgnoreRange) => {
            if start >= total && total > 0 {
                return Answer::new(416).header("Content-Range", format!("bytes */{total}"));
            }
            let last = end.unwrap_or(usize::MAX).min(total.saturating_sub(1));
            Answer::new(206).header("Content-Range", format!("bytes {start}-{last}/{total}"))
        }
        _ => Answer::new(200),
    };
    // A file held only at its start reads as zeros after it (as the hole of
    // a sparse file does), for reads of up to 16 MiB.
    if file.declared_size.is_some() {
        let end = match (answer.status, range) {
            (206, Some((_, Some(end)))) => (end + 1).min(total),
            _ => total,
        };
        if end > body.len() + (16 << 20) {
            return Answer::new(501)
                .header("X-Error-Message", "mock: only the file's start is held");
        }
        if end > body.len() {
            let mut padded = body.to_vec();
            padded.resize(end, 0);
            body = Arc::new(padded);
        }
    }
    answer.set_body(body);
    if answer.status == 206 && once != Some(Fault::WrongRange) {
        if let Some((start, end)) = range {
            let len = answer.bytes.len();
            answer.range = start.min(len)..end.map_or(len, |e| (e + 1).min(len));
        }
    }
    answer = answer.header("Accept-Ranges", "bytes");
    match once {
        Some(Fault::DropAfter(n)) => answer.cut = Some((n, Cut::Close)),
        Some(Fault::StallAfter(n)) => answer.cut = Some((n, Cut::Stall)),
        Some(Fault::ShortBody(n)) => {
            answer.range.end = answer.range.end.min(answer.range.start + n);
        }
        _ => {}
    }
    answer
}
