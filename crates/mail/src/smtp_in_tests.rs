use std::sync::Mutex;

use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Message, Tokio1Executor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::*;

/// Takes mail for `register@in.test` and `reply+…@in.test`, keeps it.
#[derive(Default)]
struct Inbox {
    delivered: Mutex<Vec<(Envelope, Vec<u8>)>>,
}

#[async_trait::async_trait]
impl MailHandler for Inbox {
    async fn accept_rcpt(&self, rcpt: &str) -> bool {
        let rcpt = rcpt.to_lowercase();
        rcpt == "register@in.test" || (rcpt.starts_with("reply+") && rcpt.ends_with("@in.test"))
    }

    async fn deliver(&self, envelope: Envelope, raw: Vec<u8>) -> Delivery {
        self.delivered.lock().unwrap().push((envelope, raw));
        Delivery::Accepted
    }
}

struct Receiver {
    addr: SocketAddr,
    inbox: Arc<Inbox>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

async fn start(config: ReceiverConfig) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let inbox = Arc::new(Inbox::default());
    let (tx, rx) = oneshot::channel::<()>();
    let done = tokio::spawn(serve(listener, config, inbox.clone(), async move {
        let _ = rx.await;
    }));
    Receiver { addr, inbox, stop: Some(tx), done }
}

impl Receiver {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.done).await.expect("serve ends on shutdown").unwrap();
    }
}

/// Writes `input` in one go and reads until the server closes or `replies` lines came.
async fn converse(addr: SocketAddr, input: &[u8], replies: usize) -> Vec<String> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(input).await.unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while text.matches("\r\n").count() < replies {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Ok(Err(e)) => panic!("{e}"),
        }
    }
    text.lines().map(str::to_owned).collect()
}

fn codes(lines: &[String]) -> Vec<&str> {
    lines.iter().filter(|l| l.as_bytes().get(3) != Some(&b'-')).map(|l| &l[..3]).collect()
}

#[tokio::test]
async fn lettre_delivers_a_message_to_the_receiver() {
    let receiver = start(ReceiverConfig::default()).await;
    let message = Message::builder()
        .from("Pat Partner <pat@partner.example>".parse::<Mailbox>().unwrap())
        .to("Register <register@in.test>".parse::<Mailbox>().unwrap())
        .subject("New referral")
        .body(String::from("Company: Prospect Inc\n.leading dot survives\nEmail: bob@prospect.example\n"))
        .unwrap();
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1").port(receiver.addr.port()).build();
    transport.send(message).await.unwrap();

    let delivered = receiver.inbox.delivered.lock().unwrap().clone();
    assert_eq!(delivered.len(), 1);
    let (envelope, raw) = &delivered[0];
    assert_eq!(envelope.mail_from, "pat@partner.example");
    assert_eq!(envelope.rcpt_to, ["register@in.test"]);
    let mail = crate::inbound::parse(raw, &crate::inbound::Limits::default()).unwrap();
    assert_eq!(mail.from.email, "pat@partner.example");
    assert!(mail.text.contains("\n.leading dot survives"), "{:?}", mail.text);
    receiver.stop().await;
}

#[tokio::test]
async fn pipelined_commands_get_answers_in_order() {
    let receiver = start(ReceiverConfig::default()).await;
    let input =
        b"EHLO client.test\r\nMAIL FROM:<pat@partner.example>\r\nRCPT TO:<nobody@in.test>\r\nRCPT TO:<REGISTER@in.test>\r\nDATA\r\n\
Subject: hi\r\nFrom: pat@partner.example\r\n\r\n..dot-stuffed\r\nbody\r\n.\r\nVRFY bob\r\nNOOP\r\nRSET\r\nQUIT\r\n";
    let lines = converse(receiver.addr, input, 12).await;
    assert_eq!(codes(&lines), ["220", "250", "250", "550", "250", "354", "250", "252", "250", "250", "221"], "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("250-SIZE ")) && lines.iter().any(|l| l == "250 PIPELINING"), "{lines:?}");
    let delivered = receiver.inbox.delivered.lock().unwrap().clone();
    assert_eq!(delivered[0].0.rcpt_to, ["register@in.test"]);
    assert_eq!(delivered[0].1, b"Subject: hi\r\nFrom: pat@partner.example\r\n\r\n.dot-stuffed\r\nbody\r\n");
    receiver.stop().await;
}

#[tokio::test]
async fn an_oversized_body_is_refused_and_the_session_goes_on() {
    let receiver = start(ReceiverConfig { max_message_bytes: 1000, ..ReceiverConfig::default() }).await;
    let mut input = b"HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<register@in.test>\r\nDATA\r\n".to_vec();
    for _ in 0..2000 {
        input.extend_from_slice(b"0123456789012345678901234567890123456789\r\n");
    }
    input.extend_from_slice(b".\r\nMAIL FROM:<a@b.test> SIZE=5000\r\nMAIL FROM:<a@b.test> SIZE=10\r\nQUIT\r\n");
    let lines = converse(receiver.addr, &input, 8).await;
    assert_eq!(codes(&lines), ["220", "250", "250", "250", "354", "552", "552", "250", "221"], "{lines:?}");
    assert!(receiver.inbox.delivered.lock().unwrap().is_empty());
    receiver.stop().await;
}

#[tokio::test]
async fn commands_out_of_order_or_malformed_are_refused() {
    let receiver = start(ReceiverConfig::default()).await;
    let input =
        b"MAIL FROM:<a@b.test>\r\nHELO c\r\nRCPT TO:<register@in.test>\r\nDATA\r\nMAIL FROM:bad address\r\nFOO\r\nSTARTTLS\r\nQUIT\r\n";
    let lines = converse(receiver.addr, input, 9).await;
    assert_eq!(codes(&lines), ["220", "503", "250", "503", "503", "501", "500", "502", "221"], "{lines:?}");
    receiver.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_turned_away() {
    let receiver = start(ReceiverConfig { max_connections: 1, ..ReceiverConfig::default() }).await;
    let mut first = TcpStream::connect(receiver.addr).await.unwrap();
    let mut greeting = [0u8; 64];
    let _ = first.read(&mut greeting).await.unwrap();
    let lines = converse(receiver.addr, b"", 1).await;
    assert_eq!(codes(&lines), ["421"], "{lines:?}");
    drop(first);
    receiver.stop().await;
}

#[tokio::test]
async fn an_idle_client_is_timed_out() {
    let receiver = start(ReceiverConfig { idle_timeout: Duration::from_millis(200), ..ReceiverConfig::default() }).await;
    let lines = converse(receiver.addr, b"HELO c\r\n", 3).await;
    assert_eq!(codes(&lines), ["220", "250", "421"], "{lines:?}");
    receiver.stop().await;
}
