//! SOCKS5 (RFC 1928) with no authentication or username/password (RFC 1929), sans-IO: it says
//! what to send and exactly how many bytes it wants next, and is fed whatever the socket gives.
//!
//! Rules:
//! * The greeting offers "no authentication", plus "username/password" when credentials are given.
//! * The proxy choosing no method (0xFF), or refusing the credentials, is an authentication failure
//!   (fatal). Choosing a method we did not offer, or a version other than 5, is a protocol error.
//! * The request is `CONNECT` to an IPv4 or IPv6 address (`socks5://`: resolved here) or to a domain
//!   name (`socks5h://`: the proxy resolves it).
//! * A reply code other than 0 is [`ProxyError::Socks`]; its verdict comes from the retry policy.
//! * The reply's bound address is read in full (its length depends on its type), and nothing may
//!   follow it before we speak.

use std::net::{IpAddr, SocketAddr};

use tether_core::ProxyError;

use super::Credentials;

/// Where the SOCKS5 proxy should connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocksTarget {
    /// An address resolved by the client (`socks5://`).
    Addr(SocketAddr),
    /// A name the proxy resolves (`socks5h://`), and a port.
    Domain(String, u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Waiting for VER, METHOD.
    Method,
    /// Waiting for the username/password status: VER, STATUS.
    AuthStatus,
    /// Waiting for VER, REP, RSV, ATYP.
    ReplyHead,
    /// Waiting for the length of a domain-name bound address.
    ReplyNameLen,
    /// Waiting for the bound address and port: this many bytes.
    ReplyRest(usize),
    Done,
    Failed,
}

/// A SOCKS5 handshake in progress: [`take_output`](Self::take_output) what it has to send, read at
/// most [`wants`](Self::wants) bytes, [`handle_input`](Self::handle_input) them; repeat until done.
///
/// ```
/// use tether::proxy::{Socks5, SocksTarget};
/// let mut s = Socks5::new(SocksTarget::Domain("example.com".into(), 443), None).unwrap();
/// assert_eq!(s.take_output(), [5, 1, 0]); // version 5, one method: no authentication
/// assert_eq!(s.wants(), 2);
/// assert_eq!(s.handle_input(&[5, 0]), Ok(false));
/// assert_eq!(&s.take_output()[..5], [5, 1, 0, 3, 11]); // CONNECT, domain name of 11 bytes
/// assert_eq!(s.handle_input(&[5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]), Ok(true));
/// ```
#[derive(Debug)]
pub struct Socks5 {
    step: Step,
    target: SocksTarget,
    credentials: Option<Credentials>,
    buf: Vec<u8>,
    out: Vec<u8>,
}

impl Socks5 {
    /// A handshake asking the proxy to connect to `target`, authenticating with `credentials` if
    /// given. Fails on what SOCKS5 cannot carry (a name or a credential over 255 bytes, an empty name).
    pub fn new(target: SocksTarget, credentials: Option<Credentials>) -> Result<Self, ProxyError> {
        if let SocksTarget::Domain(name, _) = &target
            && (name.is_empty() || name.len() > 255)
        {
            return Err(ProxyError::Protocol(format!("SOCKS5 cannot carry a host name of {} bytes", name.len())));
        }
        if let Some(c) = &credentials
            && (c.user.is_empty() || c.user.len() > 255 || c.password.len() > 255)
        {
            return Err(ProxyError::Auth("SOCKS5 user names are 1 to 255 bytes, passwords at most 255".into()));
        }
        let out = if credentials.is_some() { vec![5, 2, 0, 2] } else { vec![5, 1, 0] };
        Ok(Self { step: Step::Method, target, credentials, buf: Vec::with_capacity(32), out })
    }

    /// The bytes to send now (empty when there is nothing to send). They may hold the credentials:
    /// never log them.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// How many bytes to read next: exactly what the current message still lacks (0 when done or
    /// failed), so a reader never takes bytes that belong to the tunnel.
    pub fn wants(&self) -> usize {
        let need = match self.step {
            Step::Method | Step::AuthStatus => 2,
            Step::ReplyHead => 4,
            Step::ReplyNameLen => 1,
            Step::ReplyRest(n) => n,
            Step::Done | Step::Failed => return 0,
        };
        need - self.buf.len()
    }

    /// Whether the tunnel is open.
    pub fn is_done(&self) -> bool {
        self.step == Step::Done
    }

    /// Feeds bytes read from the proxy, in any chunking. `Ok(true)`: the tunnel is open; `Ok(false)`:
    /// send [`take_output`](Self::take_output) if any, and read more. Bytes past the reply are an error.
    pub fn handle_input(&mut self, mut data: &[u8]) -> Result<bool, ProxyError> {
        while !data.is_empty() {
            if matches!(self.step, Step::Done | Step::Failed) {
                return self.fail(ProxyError::Protocol(format!(
                    "the SOCKS5 proxy sent {} bytes past its reply before the tunnel was used",
                    data.len()
                )));
            }
            let n = self.wants().min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.wants() == 0 {
                let msg = std::mem::take(&mut self.buf);
                if let Err(e) = self.on_message(&msg) {
                    return self.fail(e);
                }
            }
        }
        Ok(self.step == Step::Done)
    }

    fn fail(&mut self, e: ProxyError) -> Result<bool, ProxyError> {
        self.step = Step::Failed;
        self.out.clear();
        Err(e)
    }

    fn on_message(&mut self, msg: &[u8]) -> Result<(), ProxyError> {
        match self.step {
            Step::Method => {
                if msg[0] != 5 {
                    return Err(not_socks5(msg[0]));
                }
                match (msg[1], &self.credentials) {
                    (0, _) => self.request(),
                    (2, Some(c)) => {
                        let (u, p) = (c.user.as_bytes(), c.password.as_bytes());
                        self.out.push(1);
                        self.out.push(u.len() as u8);
                        self.out.extend_from_slice(u);
                        self.out.push(p.len() as u8);
                        self.out.extend_from_slice(p);
                        self.step = Step::AuthStatus;
                    }
                    (0xff, None) => {
                        return Err(ProxyError::Auth(
                            "the SOCKS5 proxy requires authentication; put a user name and password in the proxy URL \
                             (socks5://user:password@host:port)"
                                .into(),
                        ));
                    }
                    (0xff, Some(_)) => {
                        return Err(ProxyError::Auth(
                            "the SOCKS5 proxy accepts neither no authentication nor username/password".into(),
                        ));
                    }
                    (m, _) => {
                        return Err(ProxyError::Protocol(format!("the SOCKS5 proxy chose method {m}, not offered")));
                    }
                }
            }
            Step::AuthStatus => {
                // RFC 1929 says version 1; some proxies answer with 5.
                if !matches!(msg[0], 1 | 5) {
                    return Err(ProxyError::Protocol(format!("bad SOCKS5 authentication reply version {}", msg[0])));
                }
                if msg[1] != 0 {
                    return Err(ProxyError::Auth("the SOCKS5 proxy refused the user name and password".into()));
                }
                self.request();
            }
            Step::ReplyHead => {
                if msg[0] != 5 {
                    return Err(not_socks5(msg[0]));
                }
                if msg[1] != 0 {
                    return Err(ProxyError::Socks { reply: msg[1] });
                }
                self.step = match msg[3] {
                    1 => Step::ReplyRest(4 + 2),
                    4 => Step::ReplyRest(16 + 2),
                    3 => Step::ReplyNameLen,
                    t => return Err(ProxyError::Protocol(format!("bad SOCKS5 bound address type {t}"))),
                };
            }
            Step::ReplyNameLen => self.step = Step::ReplyRest(usize::from(msg[0]) + 2),
            Step::ReplyRest(_) => self.step = Step::Done,
            Step::Done | Step::Failed => {}
        }
        Ok(())
    }

    /// Queues the CONNECT request.
    fn request(&mut self) {
        self.out.extend_from_slice(&[5, 1, 0]);
        let port = match &self.target {
            SocksTarget::Addr(a) => {
                match a.ip() {
                    IpAddr::V4(ip) => {
                        self.out.push(1);
                        self.out.extend_from_slice(&ip.octets());
                    }
                    IpAddr::V6(ip) => {
                        self.out.push(4);
                        self.out.extend_from_slice(&ip.octets());
                    }
                }
                a.port()
            }
            SocksTarget::Domain(name, port) => {
                self.out.push(3);
                self.out.push(name.len() as u8);
                self.out.extend_from_slice(name.as_bytes());
                *port
            }
        };
        self.out.extend_from_slice(&port.to_be_bytes());
        self.step = Step::ReplyHead;
    }
}

fn not_socks5(version: u8) -> ProxyError {
    ProxyError::Protocol(format!(
        "the proxy's answer is not SOCKS5 (version byte {version}); is it a SOCKS5 proxy (check the URL's scheme)?"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4() -> SocksTarget {
        SocksTarget::Addr("127.0.0.1:8080".parse().unwrap())
    }

    #[test]
    fn no_auth_to_an_ipv4_address() {
        let mut s = Socks5::new(v4(), None).unwrap();
        assert_eq!(s.take_output(), [5, 1, 0]);
        assert_eq!(s.wants(), 2);
        assert_eq!(s.handle_input(&[5, 0]), Ok(false));
        assert_eq!(s.take_output(), [5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]);
        assert_eq!(s.wants(), 4);
        assert_eq!(s.handle_input(&[5, 0, 0, 1]), Ok(false));
        assert_eq!(s.wants(), 6);
        assert_eq!(s.handle_input(&[10, 0, 0, 1, 0, 80]), Ok(true));
        assert!(s.is_done());
        assert_eq!(s.wants(), 0);
    }

    #[test]
    fn username_password_then_a_domain_name() {
        let creds = Credentials::new("alice", "pw");
        let mut s = Socks5::new(SocksTarget::Domain("ex.org".into(), 443), Some(creds)).unwrap();
        assert_eq!(s.take_output(), [5, 2, 0, 2]);
        assert_eq!(s.handle_input(&[5, 2]), Ok(false));
        assert_eq!(s.take_output(), b"\x01\x05alice\x02pw");
        assert_eq!(s.handle_input(&[1, 0]), Ok(false));
        assert_eq!(s.take_output(), b"\x05\x01\x00\x03\x06ex.org\x01\xbb");
        // A domain-name bound address: its length byte, then the name and port.
        assert_eq!(s.handle_input(&[5, 0, 0, 3]), Ok(false));
        assert_eq!(s.wants(), 1);
        assert_eq!(s.handle_input(&[2]), Ok(false));
        assert_eq!(s.wants(), 4);
        assert_eq!(s.handle_input(b"ab\x00\x50"), Ok(true));
    }

    #[test]
    fn ipv6_target_and_bound_address() {
        let mut s = Socks5::new(SocksTarget::Addr("[::1]:80".parse().unwrap()), None).unwrap();
        s.take_output();
        s.handle_input(&[5, 0]).unwrap();
        let mut want = vec![5, 1, 0, 4];
        want.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
        want.extend_from_slice(&[0, 80]);
        assert_eq!(s.take_output(), want);
        s.handle_input(&[5, 0, 0, 4]).unwrap();
        assert_eq!(s.wants(), 18);
    }

    #[test]
    fn failures_map_to_proxy_errors() {
        let mut s = Socks5::new(v4(), None).unwrap();
        assert!(
            matches!(s.handle_input(&[5, 0xff]), Err(ProxyError::Auth(m)) if m.contains("requires authentication"))
        );
        let mut s = Socks5::new(v4(), Some(Credentials::new("u", "p"))).unwrap();
        s.handle_input(&[5, 2]).unwrap();
        assert!(matches!(s.handle_input(&[1, 1]), Err(ProxyError::Auth(m)) if m.contains("refused the user name")));
        assert_eq!(s.wants(), 0);
        assert!(s.take_output().is_empty());
        for reply in 1..=8 {
            let mut s = Socks5::new(v4(), None).unwrap();
            s.handle_input(&[5, 0]).unwrap();
            assert_eq!(s.handle_input(&[5, reply, 0, 1]), Err(ProxyError::Socks { reply }));
        }
        // An HTTP proxy's answer: not SOCKS5.
        let mut s = Socks5::new(v4(), None).unwrap();
        assert!(matches!(s.handle_input(b"HT"), Err(ProxyError::Protocol(m)) if m.contains("not SOCKS5")));
        // A method we did not offer.
        let mut s = Socks5::new(v4(), None).unwrap();
        assert!(matches!(s.handle_input(&[5, 2]), Err(ProxyError::Protocol(_))));
        // Bytes past the reply.
        let mut s = Socks5::new(v4(), None).unwrap();
        s.handle_input(&[5, 0]).unwrap();
        assert!(s.handle_input(&[5, 0, 0, 1, 1, 2, 3, 4, 0, 1, 99]).is_err());
        // Unrepresentable inputs.
        assert!(Socks5::new(SocksTarget::Domain("a".repeat(256), 1), None).is_err());
        assert!(Socks5::new(v4(), Some(Credentials::new("", "p"))).is_err());
    }

    proptest::proptest! {
        /// Untrusted input: any bytes, in any chunking, end the same way and never panic; `wants` never
        /// asks for more than the message lacks.
        #[test]
        fn any_input_any_chunking(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            cut in 0usize..64,
            creds in proptest::prelude::any::<bool>(),
        ) {
            let make = || Socks5::new(v4(), creds.then(|| Credentials::new("u", "p"))).unwrap();
            let mut whole = make();
            let a = whole.handle_input(&data);
            let mut split = make();
            let cut = cut.min(data.len());
            let b = split.handle_input(&data[..cut]).and_then(|_| split.handle_input(&data[cut..]));
            proptest::prop_assert_eq!(a.is_ok(), b.is_ok());
            proptest::prop_assert!(whole.wants() <= 257);
        }
    }
}
