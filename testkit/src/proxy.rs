//! The shipped proxy (`deploy/nginx/templates/default.conf.template`) run
//! by Debian's nginx in front of local processes, pointed at them the way
//! an operator points it anywhere: the template rendered as the official
//! nginx image renders it, and the upstream's name answered by a DNS
//! responder of the test's own ([`Dns`]).

use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::scratch::ScratchDir;

/// The template the `lb` service of docker-compose.yml mounts.
pub const TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/nginx/templates/default.conf.template"
);

/// Where Debian's package puts nginx; `nginx` on the `PATH` otherwise.
fn nginx() -> PathBuf {
    let debian = Path::new("/usr/sbin/nginx");
    if debian.exists() {
        return debian.to_path_buf();
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.exists());
    found.unwrap_or_else(|| {
        panic!(
            "nginx is not installed: the proxy tests run the shipped config with it \
             (scripts/test installs it; by hand: apt-get install nginx)"
        )
    })
}

/// `template` rendered as the official nginx image's entrypoint
/// (`20-envsubst-on-templates.sh`) renders it: `envsubst` told to replace
/// exactly the variables its environment defines, here `vars` and `PATH`.
pub fn render(template: &Path, vars: &[(&str, &str)]) -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    let mut env: Vec<(&str, &str)> = vec![("PATH", &path)];
    env.extend_from_slice(vars);
    let defined: Vec<String> = env.iter().map(|(name, _)| format!("${{{name}}}")).collect();
    let output = Command::new("envsubst")
        .arg(defined.join(" "))
        .env_clear()
        .envs(env.iter().copied())
        .stdin(std::fs::File::open(template).expect("the template is readable"))
        .output()
        .unwrap_or_else(|error| {
            panic!("envsubst (gettext-base) is not installed: {error}; scripts/test installs it")
        });
    assert!(output.status.success(), "envsubst failed: {output:?}");
    String::from_utf8(output.stdout).expect("the rendered config is UTF-8")
}

/// A folder holding `rendered` as `conf.d/default.conf` and a main config
/// like the official image's (`worker_processes auto`, 1024 connections
/// per worker, `conf.d/*.conf` included in `http`), with every path nginx
/// writes inside the folder.
fn prefix(rendered: &str) -> ScratchDir {
    let dir = ScratchDir::new("nginx");
    let root = dir.path().display().to_string();
    std::fs::create_dir_all(dir.path().join("conf.d")).expect("the folder is writable");
    std::fs::write(dir.path().join("conf.d/default.conf"), rendered).expect("written");
    // As root, nginx's workers run as `nobody`: they must reach the folder.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755));
    }
    let main = format!(
        "worker_processes auto;\n\
         daemon off;\n\
         pid {root}/nginx.pid;\n\
         error_log {root}/error.log notice;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
             include /etc/nginx/mime.types;\n\
             default_type application/octet-stream;\n\
             access_log {root}/access.log;\n\
             sendfile on;\n\
             keepalive_timeout 65;\n\
             client_body_temp_path {root}/client_body;\n\
             proxy_temp_path {root}/proxy;\n\
             fastcgi_temp_path {root}/fastcgi;\n\
             uwsgi_temp_path {root}/uwsgi;\n\
             scgi_temp_path {root}/scgi;\n\
             include {root}/conf.d/*.conf;\n\
         }}\n"
    );
    std::fs::write(dir.path().join("nginx.conf"), main).expect("written");
    dir
}

/// `nginx -t` on `template` rendered with `vars`: its verdict and what it said.
pub fn check(template: &Path, vars: &[(&str, &str)]) -> Output {
    let rendered = render(template, vars);
    let dir = prefix(&rendered);
    Command::new(nginx())
        .args(["-t", "-e", "stderr", "-p"])
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .output()
        .expect("nginx runs")
}

/// A running nginx with the shipped config, stopped when dropped.
pub struct Proxy {
    child: Option<Child>,
    dir: ScratchDir,
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The port it listens on (`LISTEN_PORT`).
    pub port: u16,
}

impl Proxy {
    /// The shipped template with `API_UPSTREAM=upstream` (host:port) and
    /// `DNS_RESOLVER=resolver`, on a free port; returns once it accepts
    /// connections.
    pub fn start(upstream: &str, resolver: SocketAddr) -> Self {
        Self::start_from(Path::new(TEMPLATE), upstream, resolver)
    }

    /// [`start`](Self::start) with another template.
    pub fn start_from(template: &Path, upstream: &str, resolver: SocketAddr) -> Self {
        // A free port may be taken by another test before nginx binds it
        // (it was free when asked): then nginx gives up, and another is tried.
        for _ in 1..5 {
            match Self::try_start(template, upstream, resolver) {
                Ok(proxy) => return proxy,
                Err(log) if log.contains("Address already in use") => {}
                Err(log) => panic!("nginx exited: {log}"),
            }
        }
        Self::try_start(template, upstream, resolver)
            .unwrap_or_else(|log| panic!("nginx exited: {log}"))
    }

    /// One try at [`start_from`](Self::start_from) on a free port; nginx's
    /// error log if it exited instead of listening.
    fn try_start(template: &Path, upstream: &str, resolver: SocketAddr) -> Result<Self, String> {
        let port = crate::free_port();
        let (port_text, resolver) = (port.to_string(), resolver.to_string());
        let rendered = render(
            template,
            &[
                ("LISTEN_PORT", &port_text),
                ("API_UPSTREAM", upstream),
                ("DNS_RESOLVER", &resolver),
            ],
        );
        let dir = prefix(&rendered);
        let child = Command::new(nginx())
            .args(["-e", "stderr", "-p"])
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx runs");
        let mut proxy = Self {
            child: Some(child),
            dir,
            address: format!("http://127.0.0.1:{port}"),
            port,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(child) = proxy.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                proxy.child = None;
                return Err(format!("({status}) {}", proxy.error_log()));
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not listen within 10 s: {}",
                proxy.error_log()
            );
            // Polling a port nginx is about to open; it takes milliseconds.
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(proxy)
    }

    /// What nginx logged so far (its error log).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM: the master stops its workers (SIGKILL would orphan them).
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                // Waiting for a fast shutdown, which takes milliseconds.
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A DNS responder on 127.0.0.1 (UDP): answers `A` queries for one name
/// with the addresses it is given (as Docker's DNS answers a service's
/// name with its replicas' addresses, and with the same 600 s TTL), and
/// every other query with no address. Stops when dropped.
pub struct Dns {
    address: SocketAddr,
    answers: Arc<Mutex<Vec<Ipv4Addr>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The TTL Docker's embedded DNS gives its answers.
const TTL_SECS: u32 = 600;

impl Dns {
    /// Answers `name` with `addresses`.
    pub fn start(name: &str, addresses: &[Ipv4Addr]) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("a read timeout");
        let address = socket.local_addr().expect("bound");
        let answers = Arc::new(Mutex::new(addresses.to_vec()));
        let stop = Arc::new(AtomicBool::new(false));
        let name = name.to_ascii_lowercase();
        let thread = {
            let (answers, stop) = (answers.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buffer = [0_u8; 512];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((length, from)) = socket.recv_from(&mut buffer) else {
                        continue;
                    };
                    let current = answers
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    if let Some(reply) = reply(&buffer[..length], &name, &current) {
                        let _ = socket.send_to(&reply, from);
                    }
                }
            })
        };
        Self {
            address,
            answers,
            stop,
            thread: Some(thread),
        }
    }

    /// Where it listens (`DNS_RESOLVER`).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// From now on, answers with `addresses`: replicas replaced.
    pub fn answer(&self, addresses: &[Ipv4Addr]) {
        *self.answers.lock().unwrap_or_else(PoisonError::into_inner) = addresses.to_vec();
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The reply to the DNS `query` (RFC 1035 §4.1): `addresses` for an `A`
/// question about `name`, no answer for any other type, NXDOMAIN for
/// another name; `None` for what is not a query.
fn reply(query: &[u8], name: &str, addresses: &[Ipv4Addr]) -> Option<Vec<u8>> {
    let is_query = query.len() > 12 && query[2] & 0x80 == 0;
    if !is_query {
        return None;
    }
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let length = usize::from(*query.get(at)?);
        at += 1;
        if length == 0 {
            break;
        }
        labels.push(std::str::from_utf8(query.get(at..at + length)?).ok()?);
        at += length;
    }
    let kind = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question = query.get(12..at + 4)?;
    let ours = labels.join(".").eq_ignore_ascii_case(name);
    let answers: &[Ipv4Addr] = if ours && kind == 1 { addresses } else { &[] };
    let mut reply = Vec::with_capacity(512);
    reply.extend_from_slice(&query[..2]);
    // A response, authoritative, recursion desired as asked, available.
    reply.push(0x84 | (query[2] & 0x01));
    reply.push(if ours { 0x80 } else { 0x83 });
    reply.extend_from_slice(&1_u16.to_be_bytes());
    reply.extend_from_slice(&u16::try_from(answers.len()).ok()?.to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(question);
    for address in answers {
        // The name as a pointer to the question's (offset 12), type A, class IN.
        reply.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1]);
        reply.extend_from_slice(&TTL_SECS.to_be_bytes());
        reply.extend_from_slice(&4_u16.to_be_bytes());
        reply.extend_from_slice(&address.octets());
    }
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dig`'s query for `api.test` `A`, id 0x1234, recursion desired.
    fn query(name: &str, kind: u16) -> Vec<u8> {
        let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            query.push(u8::try_from(label.len()).unwrap());
            query.extend_from_slice(label.as_bytes());
        }
        query.push(0);
        query.extend_from_slice(&kind.to_be_bytes());
        query.extend_from_slice(&1_u16.to_be_bytes());
        query
    }

    #[test]
    fn an_a_query_for_the_name_gets_every_address() {
        let addresses = [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)];
        let asked = query("API.test", 1);
        let reply = reply(&asked, "api.test", &addresses).expect("a reply");
        assert_eq!(&reply[..2], &[0x12, 0x34], "the query's id");
        assert_eq!(reply[3] & 0x0F, 0, "no error");
        assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 2, "two answers");
        assert!(reply.ends_with(&[0, 4, 127, 0, 0, 3]), "{reply:?}");
    }

    #[test]
    fn other_names_do_not_exist_and_other_types_have_no_answer() {
        let addresses = [Ipv4Addr::new(127, 0, 0, 2)];
        let other = reply(&query("db.test", 1), "api.test", &addresses).expect("a reply");
        assert_eq!(other[3] & 0x0F, 3, "NXDOMAIN");
        let aaaa = reply(&query("api.test", 28), "api.test", &addresses).expect("a reply");
        assert_eq!((aaaa[3] & 0x0F, aaaa[7]), (0, 0), "no error, no answer");
    }
}
