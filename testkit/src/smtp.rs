//! An in-process SMTP sink: speaks just enough SMTP for lettre and records
//! every message it accepts. It offers `AUTH PLAIN` (without TLS, which a
//! real server would insist on), so a test can give `SMTP_URL` a user and a
//! password and have them checked ([`SmtpSink::require_login`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// A message as the sink received it.
#[derive(Debug, Clone)]
pub struct ReceivedEmail {
    /// `MAIL FROM` address.
    pub from: String,
    /// `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The raw message (headers and body), dot-unstuffed.
    pub data: String,
}

impl ReceivedEmail {
    /// The parsed MIME message, for asserting on headers and parts.
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(self.data.as_bytes())
            .expect("the sink only records complete messages")
    }

    /// The token of the link in the text part that starts with
    /// `link_start` (e.g. `"http://app.test/reset-password#token="`).
    pub fn link_token(&self, link_start: &str) -> String {
        let text = self
            .parsed()
            .body_text(0)
            .expect("a text part")
            .into_owned();
        let (_, rest) = text
            .split_once(link_start)
            .unwrap_or_else(|| panic!("a link starting {link_start}: {text}"));
        rest.split_whitespace()
            .next()
            .expect("the token")
            .to_owned()
    }
}

#[derive(Default)]
struct Inbox {
    received: Mutex<Vec<ReceivedEmail>>,
    delay: Mutex<Duration>,
    /// Replies to the next messages instead of `250`; consumed in order.
    rejections: Mutex<std::collections::VecDeque<String>>,
    /// Messages refused so far.
    refused: Mutex<usize>,
    /// The user and password a client must authenticate with, if any.
    login: Mutex<Option<(String, String)>>,
    /// Successful authentications so far.
    logins: Mutex<usize>,
    changed: Notify,
}

/// A listening sink. Clones share the same inbox.
#[derive(Clone)]
pub struct SmtpSink {
    port: u16,
    inbox: Arc<Inbox>,
}

impl SmtpSink {
    /// Listens on a free port, serving connections on the current runtime.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("can bind a local port");
        let port = listener.local_addr().expect("bound").port();
        let inbox = Arc::new(Inbox::default());
        let serving = inbox.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, serving.clone()));
            }
        });
        Self { port, inbox }
    }

    /// `smtp://127.0.0.1:<port>`, for `SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Makes every message take `delay` to be accepted, like a slow provider.
    pub fn set_delay(&self, delay: Duration) {
        *self.inbox.delay.lock().expect("not poisoned") = delay;
    }

    /// Refuses the next message with `reply` (e.g. `"550 5.1.1 no such user"`).
    /// Call again to queue more refusals; later messages are accepted.
    pub fn refuse_next(&self, reply: &str) {
        self.inbox
            .rejections
            .lock()
            .expect("not poisoned")
            .push_back(reply.to_owned());
    }

    /// How many messages were refused.
    pub fn refused(&self) -> usize {
        *self.inbox.refused.lock().expect("not poisoned")
    }

    /// From now on, a message is taken only on a connection that
    /// authenticated as `user` with `password` (`535` for other
    /// credentials, `530` for none), as a provider's relay does.
    pub fn require_login(&self, user: &str, password: &str) {
        *self.inbox.login.lock().expect("not poisoned") =
            Some((user.to_owned(), password.to_owned()));
    }

    /// How many connections authenticated successfully.
    pub fn logins(&self) -> usize {
        *self.inbox.logins.lock().expect("not poisoned")
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<ReceivedEmail> {
        self.inbox.received.lock().expect("not poisoned").clone()
    }

    /// The received messages whose subject starts with `prefix` (e.g.
    /// `"Welcome"`): a test about one kind of email is not thrown by the
    /// others a signup sends.
    pub fn received_titled(&self, prefix: &str) -> Vec<ReceivedEmail> {
        self.received()
            .into_iter()
            .filter(|email| {
                email
                    .parsed()
                    .subject()
                    .is_some_and(|subject| subject.starts_with(prefix))
            })
            .collect()
    }

    /// Waits until at least `count` messages whose subject starts with
    /// `prefix` have arrived, and returns those.
    pub async fn wait_for_titled(
        &self,
        prefix: &str,
        count: usize,
        deadline: Duration,
    ) -> Vec<ReceivedEmail> {
        let wait = async {
            loop {
                let changed = self.inbox.changed.notified();
                let titled = self.received_titled(prefix);
                if titled.len() >= count {
                    return titled;
                }
                changed.await;
            }
        };
        tokio::time::timeout(deadline, wait)
            .await
            .unwrap_or_else(|_| {
                panic!("expected {count} emails titled {prefix:?} within {deadline:?}")
            })
    }

    /// Waits until at least `count` messages arrived, or panics after `deadline`.
    pub async fn wait_for(&self, count: usize, deadline: Duration) -> Vec<ReceivedEmail> {
        let wait = async {
            loop {
                let changed = self.inbox.changed.notified();
                let received = self.received();
                if received.len() >= count {
                    return received;
                }
                changed.await;
            }
        };
        tokio::time::timeout(deadline, wait)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "expected {count} emails within {deadline:?}, got {}",
                    self.received().len()
                )
            })
    }
}

async fn serve(stream: TcpStream, inbox: Arc<Inbox>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut authenticated = false;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let required = inbox.login.lock().expect("not poisoned").clone();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-sink.test\r\n250-8BITMIME\r\n250-AUTH PLAIN\r\n250 SMTPUTF8\r\n"
        } else if command.starts_with("AUTH PLAIN") {
            let mut given = line.trim_end()["AUTH PLAIN".len()..].trim().to_owned();
            if given.is_empty() {
                // No initial response: the client sends it when asked.
                write.write_all(b"334 \r\n").await?;
                given.clear();
                lines.read_line(&mut given).await?;
            }
            authenticated = plain_credentials(given.trim())
                .is_some_and(|login| required.as_ref().is_none_or(|wanted| login == *wanted));
            if authenticated {
                *inbox.logins.lock().expect("not poisoned") += 1;
                b"235 2.7.0 Authentication successful\r\n"
            } else {
                b"535 5.7.8 Authentication credentials invalid\r\n"
            }
        } else if command.starts_with("MAIL FROM:") && required.is_some() && !authenticated {
            b"530 5.7.0 Authentication required\r\n"
        } else if command.starts_with("MAIL FROM:") {
            from = address(&line);
            to.clear();
            b"250 OK\r\n"
        } else if command.starts_with("RCPT TO:") {
            to.push(address(&line));
            b"250 OK\r\n"
        } else if command == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let data = read_data(&mut lines).await?;
            let delay = *inbox.delay.lock().expect("not poisoned");
            // Like a real server, a message whose sender hung up before the
            // final reply is not delivered: the sender will try again.
            let mut probe = [0_u8; 1];
            tokio::select! {
                // A window must pass: a slow server's pause before its final reply.
                () = tokio::time::sleep(delay) => {}
                read = lines.get_mut().peek(&mut probe) => {
                    if matches!(read, Ok(0) | Err(_)) {
                        return Ok(());
                    }
                }
            }
            let refusal = inbox.rejections.lock().expect("not poisoned").pop_front();
            if let Some(reply) = refusal {
                *inbox.refused.lock().expect("not poisoned") += 1;
                write.write_all(format!("{reply}\r\n").as_bytes()).await?;
                continue;
            }
            inbox
                .received
                .lock()
                .expect("not poisoned")
                .push(ReceivedEmail {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                });
            inbox.changed.notify_waiters();
            b"250 OK queued\r\n"
        } else if command == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            // HELO, RSET, NOOP and friends.
            b"250 OK\r\n"
        };
        write.write_all(reply).await?;
    }
}

async fn read_data(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<String> {
    let mut data = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == ".\r\n" {
            return Ok(data);
        }
        data.push_str(line.strip_prefix('.').unwrap_or(&line));
    }
}

/// The user and password of an `AUTH PLAIN` response: base64 of
/// `authzid NUL user NUL password` (RFC 4616).
fn plain_credentials(response: &str) -> Option<(String, String)> {
    let decoded = String::from_utf8(base64_decode(response)?).ok()?;
    let mut parts = decoded.split('\0');
    let (_authzid, user, password) = (parts.next()?, parts.next()?, parts.next()?);
    Some((user.to_owned(), password.to_owned()))
}

/// Standard base64 with padding, as SMTP uses; `None` if it is not that.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0_u32;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in text.trim_end_matches('=').bytes() {
        let value = ALPHABET.iter().position(|&a| a == c)?;
        bits = (bits << 6) | u32::try_from(value).ok()?;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push(u8::try_from((bits >> count) & 0xff).ok()?);
        }
    }
    Some(bytes)
}

fn address(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line.rfind('>').unwrap_or(line.len());
    line[start..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::plain_credentials;

    #[test]
    fn plain_credentials_are_read_from_their_base64() {
        assert_eq!(
            plain_credentials("AG1haWxlcgBodW50ZXIyLVNFQ1JFVA=="),
            Some(("mailer".to_owned(), "hunter2-SECRET".to_owned()))
        );
        assert_eq!(plain_credentials("not base64!"), None);
    }
}
