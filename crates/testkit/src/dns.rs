//! An authoritative DNS server on loopback, for tests of DNS-based checks.
//!
//! It speaks the real wire protocol (RFC 1035 messages encoded by `hickory-proto`) over UDP
//! and TCP on the same port, so a resolver pointed at it goes through its whole stack:
//! encoding, transport, truncation and the fallback to TCP, NXDOMAIN handling. Tests set TXT
//! records at run time; every other name answers NXDOMAIN, as a real zone does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::AbortHandle;

/// The TTL of every answer: short, so nothing downstream keeps an answer across test steps.
const TTL: u32 = 1;

/// How a query reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// One question as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsQuery {
    /// Lower-case, without the trailing dot.
    pub name: String,
    /// The record type's mnemonic, e.g. `TXT`.
    pub record_type: String,
    pub transport: Transport,
}

#[derive(Default)]
struct Zone {
    /// Name (lower-case, no trailing dot) → TXT records, each a list of character-strings.
    txt: HashMap<String, Vec<Vec<String>>>,
    queries: Vec<DnsQuery>,
    /// When set, queries are read and recorded but never answered (a dead nameserver).
    silent: bool,
}

/// A DNS server on 127.0.0.1 (UDP and TCP, same port). Stops when dropped.
pub struct DnsServer {
    /// The address to configure as the resolver's nameserver.
    pub addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    tasks: Vec<AbortHandle>,
}

impl DnsServer {
    /// Binds UDP and TCP on the same free loopback port and starts answering.
    pub async fn start() -> Self {
        // A free UDP port is not necessarily free for TCP: retry a few ports.
        let mut last_err = None;
        for _ in 0..20 {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            match TcpListener::bind(addr).await {
                Ok(tcp) => return Self::serve(udp, tcp),
                Err(e) => last_err = Some(e),
            }
        }
        panic!("no loopback port free for both UDP and TCP: {last_err:?}");
    }

    fn serve(udp: UdpSocket, tcp: TcpListener) -> Self {
        let addr = udp.local_addr().unwrap();
        assert!(
            addr.ip().is_loopback(),
            "test servers listen on loopback only"
        );
        let zone = Arc::new(Mutex::new(Zone::default()));
        let udp_task = tokio::spawn(serve_udp(udp, zone.clone()));
        let tcp_task = tokio::spawn(serve_tcp(tcp, zone.clone()));
        Self {
            addr,
            zone,
            tasks: vec![udp_task.abort_handle(), tcp_task.abort_handle()],
        }
    }

    /// Adds a TXT record with this value at `name` (split into 255-byte character-strings
    /// when longer, as DNS requires), next to any records already there.
    pub fn add_txt(&self, name: &str, value: &str) {
        let strings = value
            .as_bytes()
            .chunks(255)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>();
        self.add_txt_strings(name, strings);
    }

    /// Adds a TXT record made of these character-strings (each at most 255 bytes).
    pub fn add_txt_strings(&self, name: &str, strings: Vec<String>) {
        self.zone
            .lock()
            .unwrap()
            .txt
            .entry(key(name))
            .or_default()
            .push(strings);
    }

    /// Removes every TXT record at `name`; the name then answers NXDOMAIN again.
    pub fn remove_txt(&self, name: &str) {
        self.zone.lock().unwrap().txt.remove(&key(name));
    }

    /// When `silent`, queries are recorded but never answered, like a nameserver that is down.
    pub fn set_silent(&self, silent: bool) {
        self.zone.lock().unwrap().silent = silent;
    }

    /// Every question received so far, in order.
    pub fn queries(&self) -> Vec<DnsQuery> {
        self.zone.lock().unwrap().queries.clone()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

async fn serve_udp(socket: UdpSocket, zone: Arc<Mutex<Zone>>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(reply) = answer(&buf[..n], Transport::Udp, &zone) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, zone: Arc<Mutex<Zone>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(serve_tcp_conn(stream, zone.clone()));
    }
}

/// DNS over TCP: each message is preceded by its length as two bytes (RFC 1035 §4.2.2).
async fn serve_tcp_conn(mut stream: TcpStream, zone: Arc<Mutex<Zone>>) {
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        if stream.read_exact(&mut msg).await.is_err() {
            return;
        }
        let Some(reply) = answer(&msg, Transport::Tcp, &zone) else {
            continue;
        };
        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// The encoded reply to one encoded request, or `None` to stay silent.
fn answer(request: &[u8], transport: Transport, zone: &Mutex<Zone>) -> Option<Vec<u8>> {
    let request = Message::from_vec(request).ok()?;
    if request.message_type() != MessageType::Query {
        return None;
    }
    let reply_to = |request: &Message| {
        let mut reply = Message::new();
        let mut header = Header::response_from_request(request.header());
        header.set_authoritative(true);
        reply.set_header(header);
        reply.add_queries(request.queries().iter().cloned());
        reply
    };
    let mut reply = reply_to(&request);

    // What the zone holds for the question, read under the lock; encoding happens after.
    let found = {
        let mut z = zone.lock().unwrap();
        for q in request.queries() {
            z.queries.push(DnsQuery {
                name: key(&q.name().to_ascii()),
                record_type: q.query_type().to_string(),
                transport,
            });
        }
        if z.silent {
            return None;
        }
        match request.queries() {
            [q] if request.op_code() == OpCode::Query => {
                let name = key(&q.name().to_ascii());
                let records = z.txt.get(&name).cloned();
                let exists = records.is_some() || z.txt.keys().any(|k| is_below(k, &name));
                Some((q.clone(), records, exists))
            }
            _ => None,
        }
    };
    let Some((query, records, exists)) = found else {
        reply.set_response_code(ResponseCode::NotImp);
        return reply.to_vec().ok();
    };
    match records {
        Some(records) if query.query_type() == RecordType::TXT => {
            for strings in records {
                reply.add_answer(Record::from_rdata(
                    query.name().clone(),
                    TTL,
                    RData::TXT(TXT::new(strings)),
                ));
            }
        }
        // The name exists (it has records, or names below it do), just not with this type:
        // NOERROR with an empty answer ("NODATA").
        _ if exists => {}
        _ => {
            reply.set_response_code(ResponseCode::NXDomain);
        }
    }
    let encoded = reply.to_vec().ok()?;
    if transport == Transport::Udp && encoded.len() > usize::from(request.max_payload()) {
        // Too big for this UDP exchange: say so, and the resolver retries over TCP.
        let mut truncated = reply_to(&request);
        truncated.set_truncated(true);
        return truncated.to_vec().ok();
    }
    Some(encoded)
}

/// Is `name` a proper ancestor of `child` (so `name` exists as an empty non-terminal)?
fn is_below(child: &str, name: &str) -> bool {
    child
        .strip_suffix(name)
        .is_some_and(|rest| rest.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Name;

    fn query(name: &str, rtype: RecordType) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(7).set_message_type(MessageType::Query);
        m.add_query(hickory_proto::op::Query::query(
            Name::from_ascii(name).unwrap(),
            rtype,
        ));
        m.to_vec().unwrap()
    }

    #[test]
    fn answers_txt_nodata_and_nxdomain_like_a_zone() {
        let zone = Mutex::new(Zone::default());
        zone.lock()
            .unwrap()
            .txt
            .insert("_c.example.com".into(), vec![vec!["a".into(), "b".into()]]);

        let r = Message::from_vec(
            &answer(
                &query("_C.Example.com.", RecordType::TXT),
                Transport::Udp,
                &zone,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(r.id(), 7);
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert_eq!(r.answers().len(), 1);
        let RData::TXT(txt) = r.answers()[0].data() else {
            panic!("not TXT: {:?}", r.answers()[0]);
        };
        assert_eq!(
            txt.txt_data(),
            &[b"a".to_vec().into(), b"b".to_vec().into()]
        );

        let r = Message::from_vec(
            &answer(
                &query("example.com.", RecordType::TXT),
                Transport::Udp,
                &zone,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            r.response_code(),
            ResponseCode::NoError,
            "empty non-terminal"
        );
        assert!(r.answers().is_empty());

        let r = Message::from_vec(
            &answer(
                &query("other.example.", RecordType::TXT),
                Transport::Udp,
                &zone,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(r.response_code(), ResponseCode::NXDomain);

        let recorded = zone.lock().unwrap().queries.clone();
        assert_eq!(recorded.len(), 3);
        assert_eq!(recorded[0].name, "_c.example.com");
        assert_eq!(recorded[0].record_type, "TXT");
    }

    #[test]
    fn large_udp_answers_are_truncated_and_whole_over_tcp() {
        let zone = Mutex::new(Zone::default());
        let big: Vec<Vec<String>> = (0..10)
            .map(|i| vec![format!("{i}{}", "x".repeat(100))])
            .collect();
        zone.lock().unwrap().txt.insert("big.example".into(), big);
        let q = query("big.example.", RecordType::TXT);
        let udp = Message::from_vec(&answer(&q, Transport::Udp, &zone).unwrap()).unwrap();
        assert!(udp.truncated());
        assert!(udp.answers().is_empty());
        let tcp = Message::from_vec(&answer(&q, Transport::Tcp, &zone).unwrap()).unwrap();
        assert!(!tcp.truncated());
        assert_eq!(tcp.answers().len(), 10);
    }

    #[test]
    fn ancestors_are_found_on_label_boundaries_only() {
        assert!(is_below("a.example.com", "example.com"));
        assert!(!is_below("badexample.com", "example.com"));
        assert!(!is_below("example.com", "example.com"));
    }
}
