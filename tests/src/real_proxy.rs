//! Real proxies for the proxy tests, started on loopback with generated configuration files in a
//! temporary directory: Debian's `tinyproxy` (HTTP CONNECT, with Basic auth) and `dante-server`'s
//! `danted` (SOCKS5, with username/password).
//!
//! `danted`'s username method checks the system's password database: it needs the account
//! [`SOCKS_USER`] with password [`SOCKS_PASSWORD`], which `.ci/run` creates (a system account with
//! no home and no shell). A missing binary or account is a [`Missing`] error: the tests skip with
//! that reason, and fail on CI (`CI=true`), where `.ci/run` installs them.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The system account `danted` authenticates (`.ci/run` creates it).
pub const SOCKS_USER: &str = "tetherproxy";
/// Its password.
pub const SOCKS_PASSWORD: &str = "tether-s0cks-pw";
/// The Basic credentials `tinyproxy` is configured with when it asks for some.
pub const HTTP_USER: &str = "tether";
/// Their password.
pub const HTTP_PASSWORD: &str = "http-pr0xy-pw";

/// Why a real proxy cannot run here, with the way to fix it.
#[derive(Debug, Clone)]
pub struct Missing(pub String);

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Skips a test for `why`, or fails it on CI (`CI=true`), where `.ci/run` installs the proxies.
pub fn skip_or_fail(test: &str, why: &Missing) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} cannot run on CI: {why}; .ci/run must install it");
    }
    eprintln!("SKIPPED {test}: {why}");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tinyproxy,
    Dante,
}

/// A real proxy process on `127.0.0.1`. Dropping it kills it and removes its directory.
pub struct RealProxy {
    kind: Kind,
    dir: PathBuf,
    port: u16,
    auth: bool,
    child: Option<Child>,
}

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

fn find(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|d| d.join(binary))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local address").port()
}

impl RealProxy {
    /// `tinyproxy` as an HTTP CONNECT proxy; with `auth`, it wants [`HTTP_USER`]:[`HTTP_PASSWORD`].
    pub fn tinyproxy(auth: bool) -> Result<Self, Missing> {
        find("tinyproxy").ok_or_else(|| Missing("`tinyproxy` is not installed (apt-get install tinyproxy)".into()))?;
        Self::start(Kind::Tinyproxy, auth)
    }

    /// `danted` as a SOCKS5 proxy; with `auth`, it wants [`SOCKS_USER`]:[`SOCKS_PASSWORD`].
    pub fn dante(auth: bool) -> Result<Self, Missing> {
        find("danted").ok_or_else(|| Missing("`danted` is not installed (apt-get install dante-server)".into()))?;
        if auth {
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            if !passwd.lines().any(|l| l.starts_with(&format!("{SOCKS_USER}:"))) {
                return Err(Missing(format!(
                    "no system account {SOCKS_USER:?} for danted's username method (.ci/run creates it: \
                     useradd --system {SOCKS_USER} && echo '{SOCKS_USER}:{SOCKS_PASSWORD}' | chpasswd)"
                )));
            }
        }
        Self::start(Kind::Dante, auth)
    }

    fn start(kind: Kind, auth: bool) -> Result<Self, Missing> {
        let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("tether-proxy-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Missing(format!("cannot create {}: {e}", dir.display())))?;
        let mut p = Self { kind, dir, port: free_port(), auth, child: None };
        p.launch()?;
        Ok(p)
    }

    fn config(&self) -> String {
        let log = self.dir.join("proxy.log");
        match self.kind {
            Kind::Tinyproxy => {
                let auth = if self.auth { format!("BasicAuth {HTTP_USER} {HTTP_PASSWORD}\n") } else { String::new() };
                // No ConnectPort line: CONNECT to any port (the test servers' ports are random).
                format!(
                    "Port {}\nListen 127.0.0.1\nTimeout 600\nMaxClients 100\nLogLevel Info\nSyslog Off\nLogFile \"{}\"\n\
                     Allow 127.0.0.1\n{auth}",
                    self.port,
                    log.display()
                )
            }
            Kind::Dante => {
                let method = if self.auth { "username" } else { "none" };
                format!(
                    "logoutput: {}\ninternal: 127.0.0.1 port = {}\nexternal: 127.0.0.1\nsocksmethod: {method}\n\
                     clientmethod: none\nuser.privileged: root\nuser.unprivileged: nobody\n\
                     client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n\
                     socks pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n",
                    log.display(),
                    self.port
                )
            }
        }
    }

    /// Starts the process and waits (bounded) until it accepts connections.
    fn launch(&mut self) -> Result<(), Missing> {
        use std::os::unix::process::CommandExt;
        let conf = self.dir.join("proxy.conf");
        std::fs::write(&conf, self.config()).map_err(|e| Missing(format!("cannot write {}: {e}", conf.display())))?;
        let mut cmd = match self.kind {
            Kind::Tinyproxy => {
                let mut c = Command::new(find("tinyproxy").unwrap_or_else(|| "tinyproxy".into()));
                c.arg("-d").arg("-c").arg(&conf);
                c
            }
            Kind::Dante => {
                let mut c = Command::new(find("danted").unwrap_or_else(|| "danted".into()));
                c.arg("-f").arg(&conf).arg("-p").arg(self.dir.join("danted.pid")).args(["-N", "1"]);
                c
            }
        };
        // Its own process group, so a kill takes its children (danted forks) with it.
        cmd.process_group(0).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut child = cmd.spawn().map_err(|e| Missing(format!("cannot start {:?}: {e}", self.kind)))?;
        let addr = self.addr();
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join("proxy.log")).unwrap_or_default();
                // The port may still be held by the previous instance's last connections: retry.
                if Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                    child = cmd.spawn().map_err(|e| Missing(format!("cannot start {:?}: {e}", self.kind)))?;
                    continue;
                }
                panic!("{:?} exited with {status} on port {}; its log:\n{log}", self.kind, self.port);
            }
            assert!(Instant::now() < deadline, "{:?} did not listen on {addr} within 20 s", self.kind);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The proxy URL with the right credentials (if it wants some).
    pub fn url(&self) -> String {
        match (self.kind, self.auth) {
            (Kind::Tinyproxy, true) => self.url_with(HTTP_USER, HTTP_PASSWORD),
            (Kind::Dante, true) => self.url_with(SOCKS_USER, SOCKS_PASSWORD),
            (Kind::Tinyproxy, false) => format!("http://127.0.0.1:{}", self.port),
            (Kind::Dante, false) => format!("socks5://127.0.0.1:{}", self.port),
        }
    }

    /// The proxy URL with these credentials (`socks5://` for dante).
    pub fn url_with(&self, user: &str, password: &str) -> String {
        let scheme = if self.kind == Kind::Tinyproxy { "http" } else { "socks5" };
        format!("{scheme}://{user}:{password}@127.0.0.1:{}", self.port)
    }

    /// Kills the proxy and every process it started, now (SIGKILL): tunnels through it break.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same configuration.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(e) = self.launch() {
            panic!("restarting the proxy: {e}");
        }
    }

    /// The proxy's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("proxy.log")).unwrap_or_default()
    }
}

impl Drop for RealProxy {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
