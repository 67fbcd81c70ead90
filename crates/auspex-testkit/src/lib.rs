//! Helpers for tests against real peers (Prometheus, Alertmanager, mlflow, ...).
//!
//! - [`find_binary`] finds a peer on `PATH` (or in extra folders), or **fails** the test with
//!   an install hint. It never skips: a missing peer is a failed test, under `CI=true` or not.
//! - [`free_port`] picks a free TCP port on 127.0.0.1.
//! - [`Peer::spawn`] starts a peer with its stdout/stderr in a log file, [`Peer::wait_tcp`] and
//!   [`Peer::wait_http`] wait for readiness, and dropping the peer kills it. When the test
//!   thread is panicking, the log is kept and its path and tail are printed.
//!
//! Only std is used, so the kit builds fast and adds no dependencies to tests.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True when running under CI (`CI=true` or `CI=1`).
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true" | "1"))
}

/// Finds `name` on `PATH` or in `extra` folders. Panics with `hint` when it is missing:
/// tests whose peer is missing fail, they never skip.
pub fn find_binary(name: &str, extra: &[&str], hint: &str) -> PathBuf {
    match locate(name, extra) {
        Some(p) => p,
        None => panic!(
            "error: peer binary {name:?} not found on PATH or in {extra:?}: it is required \
             (install it: {hint}; `bash .ci/run` installs every peer){}",
            if in_ci() { " [CI=true]" } else { "" }
        ),
    }
}

/// Like [`find_binary`] but returns `None` instead of panicking (for diagnostics only).
pub fn locate(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Held while a probe socket is open and while a child process is forked.
static FORK_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A free TCP port on 127.0.0.1 (checked by binding it, then released; the peer binds it next).
///
/// Ports come from 20000..32000, below Linux's ephemeral range (32768+), so outgoing
/// connections of other tests cannot take them in the meantime, and each port is handed out
/// once per process (tests run in parallel threads).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LO: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..SPAN {
        let port = (LO + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        // No fork may happen while the probe socket is open: a child would hold it until its
        // exec, and the port would look taken to whoever binds it next.
        let _guard = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, port));
        if probe.is_ok() {
            drop(probe);
            return port;
        }
    }
    panic!("error: no free TCP port on 127.0.0.1 in {LO}..{} (too many tests running?)", LO + SPAN)
}

/// Runs a command to completion, capturing its output. Use this instead of
/// `Command::output` in tests that also use [`free_port`]: the fork happens under the same lock.
pub fn output(cmd: &mut Command) -> std::io::Result<std::process::Output> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = {
        let _guard = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        cmd.spawn()
    }?;
    child.wait_with_output()
}

/// A running peer process. Dropping it kills the process.
#[derive(Debug)]
pub struct Peer {
    name: String,
    child: Child,
    log: PathBuf,
    dir: PathBuf,
}

impl Peer {
    /// Starts `cmd` with stdout and stderr appended to a log file in a fresh temp folder.
    pub fn spawn(name: &str, mut cmd: Command) -> Peer {
        let dir = temp_dir(name);
        let log = dir.join(format!("{name}.log"));
        let f = std::fs::File::create(&log).expect("create peer log");
        let f2 = f.try_clone().expect("clone log handle");
        cmd.stdout(Stdio::from(f)).stderr(Stdio::from(f2)).stdin(Stdio::null());
        let child = {
            let _guard = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            cmd.spawn()
        }
        .unwrap_or_else(|e| panic!("error: cannot start peer {name}: {e} ({cmd:?})"));
        Peer { name: name.to_string(), child, log, dir }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A scratch folder owned by this peer (removed on drop unless the test failed).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process at once (SIGKILL on Unix), as a crash would, and waits for it.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits until a TCP connection to `addr` succeeds. Panics (with the log) on timeout or if
    /// the peer exits first.
    pub fn wait_tcp(&mut self, addr: SocketAddr, timeout: Duration) {
        self.wait(timeout, |_| {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
    }

    /// Waits until `GET path` on `addr` answers with a 2xx status.
    pub fn wait_http(&mut self, addr: SocketAddr, path: &str, timeout: Duration) {
        self.wait(timeout, |_| {
            http_get(addr, path).map(|(s, _)| (200..300).contains(&s)).unwrap_or(false)
        });
    }

    fn wait(&mut self, timeout: Duration, mut ready: impl FnMut(&mut Self) -> bool) {
        let start = Instant::now();
        loop {
            if ready(self) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "error: peer {} exited early with {status}; log {}:\n{}",
                    self.name,
                    self.log.display(),
                    tail(&self.log(), 40)
                );
            }
            if start.elapsed() > timeout {
                panic!(
                    "error: peer {} not ready after {timeout:?}; log {}:\n{}",
                    self.name,
                    self.log.display(),
                    tail(&self.log(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "peer {} log kept at {}; last lines:\n{}",
                self.name,
                self.log.display(),
                tail(&self.log(), 40)
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A fresh folder under the system temp dir, `auspex-test-{prefix}-{pid}-{n}`. Folders are
/// left for the test run to inspect; the first call in a process removes those of test
/// processes that have exited (on Linux, where `/proc` says which are alive), so runs do not
/// pile up data (one MLflow test writes 0.5 GB).
pub fn temp_dir(prefix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| remove_dead_temp_dirs(&std::env::temp_dir()));
    let d = std::env::temp_dir().join(format!(
        "auspex-test-{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// The pid in a [`temp_dir`] name `auspex-test-{prefix}-{pid}-{n}` (the prefix may hold `-`).
fn temp_dir_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("auspex-test-")?;
    let mut parts = rest.rsplit('-');
    parts.next()?.parse::<u32>().ok()?;
    parts.next()?.parse().ok()
}

/// Removes the [`temp_dir`] folders under `root` whose process has exited.
fn remove_dead_temp_dirs(root: &Path) {
    if !Path::new("/proc/self").exists() {
        return; // no way to tell which processes are alive
    }
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(temp_dir_pid) else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A minimal HTTP/1.0 GET: returns the status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let status =
        buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| {
            std::io::Error::other(format!("bad HTTP response: {:?}", tail(&buf, 3)))
        })?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_of_exited_test_processes_are_removed() {
        assert_eq!(temp_dir_pid("auspex-test-mlflow-big-4242-0"), Some(4242));
        assert_eq!(temp_dir_pid("auspex-test-am-17-3"), Some(17));
        assert_eq!(temp_dir_pid("auspex-test-x"), None);
        assert_eq!(temp_dir_pid("other-1-2"), None);
        let root = temp_dir("sweep-root");
        // No pid reaches this (Linux's maximum is 2^22); ours is alive.
        let dead = root.join("auspex-test-old-4294967-0");
        let alive = root.join(format!("auspex-test-new-{}-0", std::process::id()));
        let other = root.join("someone-else-1-0");
        for d in [&dead, &alive, &other] {
            std::fs::create_dir_all(d.join("sub")).unwrap();
        }
        remove_dead_temp_dirs(&root);
        assert!(!dead.exists(), "an exited process's folder goes");
        assert!(alive.exists() && other.exists(), "a live process's and foreign folders stay");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let (a, b) = (free_port(), free_port());
        assert_ne!(a, b, "each port is handed out once");
        assert!((20_000..32_000).contains(&a));
        TcpListener::bind((Ipv4Addr::LOCALHOST, a)).expect("port should be free");
    }

    #[test]
    #[should_panic(expected = "not found on PATH")]
    fn missing_binary_fails_with_a_hint() {
        find_binary("auspex-no-such-peer-binary", &[], "apt-get install nothing");
    }

    #[test]
    fn finds_a_real_binary() {
        assert!(find_binary("sh", &[], "apt-get install dash").ends_with("sh"));
    }

    /// A real peer over loopback: Python's http.server (python3 is a peer of the test suite).
    #[test]
    fn spawns_waits_and_kills_a_real_http_peer() {
        let py = find_binary("python3", &[], "apt-get install python3");
        let port = free_port();
        let dir = temp_dir("www");
        std::fs::write(dir.join("hello.txt"), "hi there").unwrap();
        let mut cmd = Command::new(py);
        cmd.args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string()]).current_dir(&dir);
        let mut peer = Peer::spawn("http", cmd);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        peer.wait_http(addr, "/hello.txt", Duration::from_secs(20));
        let (status, body) = http_get(addr, "/hello.txt").unwrap();
        assert_eq!((status, body.as_str()), (200, "hi there"));
        let log = peer.log_path().to_path_buf();
        drop(peer);
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err(), "killed");
        assert!(!log.exists(), "log removed after a passing test");
    }

    #[test]
    #[should_panic(expected = "exited early")]
    fn a_peer_that_dies_fails_the_wait_with_its_log() {
        let mut cmd = Command::new(find_binary("sh", &[], "apt-get install dash"));
        cmd.args(["-c", "echo boom; exit 3"]);
        let mut peer = Peer::spawn("dies", cmd);
        peer.wait_tcp(([127, 0, 0, 1], free_port()).into(), Duration::from_secs(10));
    }
}
