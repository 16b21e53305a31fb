//! One SMTP connection: the command state machine and DATA reading.
//!
//! Rules: order is HELO/EHLO → MAIL → RCPT… → DATA (503 otherwise); RSET
//! and a new EHLO drop the transaction; answers are queued and written once
//! per read; a connection ends on QUIT, timeout, shutdown or a write error.

use std::net::SocketAddr;

use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver, RequestReceiver};
use smtp_proto::{Error as ProtoError, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::timeout;

use super::{Delivery, Envelope, MailHandler, ReceiverConfig};

/// Says why we cannot talk now, then hangs up.
pub(super) async fn turn_away(mut stream: TcpStream) {
    let _ = stream.write_all(b"421 4.3.2 Too many connections, try again later\r\n").await;
}

enum Reading {
    Commands,
    Data(DataReceiver, Vec<u8>),
    /// Past the size limit: the rest of DATA is read and thrown away.
    Discarding(DummyDataReceiver),
}

struct Session<'a> {
    peer: SocketAddr,
    config: &'a ReceiverConfig,
    handler: &'a dyn MailHandler,
    helo: Option<String>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    out: Vec<u8>,
    quit: bool,
}

pub(super) async fn run(
    mut stream: TcpStream,
    peer: SocketAddr,
    config: &ReceiverConfig,
    handler: &dyn MailHandler,
    mut stop: watch::Receiver<bool>,
) {
    let mut s = Session { peer, config, handler, helo: None, mail_from: None, rcpt_to: Vec::new(), out: Vec::new(), quit: false };
    s.reply(220, &format!("{} ESMTP partnerloop", config.hostname));
    let mut commands = RequestReceiver::default();
    let mut reading = Reading::Commands;
    // smtp-proto holds a half-received command line privately; we track it.
    let mut half_line = false;
    let mut buf = vec![0u8; 8192];
    loop {
        if !s.out.is_empty() && stream.write_all(&std::mem::take(&mut s.out)).await.is_err() {
            return;
        }
        if s.quit {
            return;
        }
        // Idle means between commands with nothing half-received.
        let idle = matches!(reading, Reading::Commands) && !half_line;
        let wait = if idle { config.idle_timeout } else { config.command_timeout };
        let read = tokio::select! {
            read = timeout(wait, stream.read(&mut buf)) => read,
            _ = stopped(&mut stop), if idle => {
                let _ = stream.write_all(b"421 4.3.2 Service shutting down\r\n").await;
                return;
            }
        };
        let n = match read {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => n,
            Err(_) => {
                tracing::info!(%peer, reason = "timeout", "smtp session closed");
                let _ = stream.write_all(b"421 4.4.2 Timeout, closing connection\r\n").await;
                return;
            }
        };
        let mut bytes = buf[..n].iter();
        while !s.quit && !bytes.as_slice().is_empty() {
            reading = match reading {
                Reading::Commands => match commands.ingest(&mut bytes) {
                    Ok(request) => {
                        half_line = false;
                        s.command(request.into_owned()).await
                    }
                    Err(ProtoError::NeedsMoreData { .. }) => {
                        half_line = true;
                        Reading::Commands
                    }
                    Err(error) => {
                        half_line = false;
                        s.protocol_error(&error);
                        Reading::Commands
                    }
                },
                Reading::Data(mut data, mut message) => {
                    if data.ingest(&mut bytes, &mut message) {
                        s.deliver(message).await;
                        Reading::Commands
                    } else if message.len() > config.max_message_bytes {
                        Reading::Discarding(DummyDataReceiver::new_data(&data))
                    } else {
                        Reading::Data(data, message)
                    }
                }
                Reading::Discarding(mut rest) => {
                    if rest.ingest(&mut bytes) {
                        s.refuse(552, "5.3.4 Message too big", "message too large");
                        s.reset();
                        Reading::Commands
                    } else {
                        Reading::Discarding(rest)
                    }
                }
            };
        }
    }
}

/// Resolves once shutdown is signalled (or the server is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // `wait_for` holds a non-Send guard across the select; this does not.
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

impl Session<'_> {
    fn reply(&mut self, code: u16, text: &str) {
        self.out.extend_from_slice(format!("{code} {text}\r\n").as_bytes());
    }

    /// A refusal, logged with its reason.
    fn refuse(&mut self, code: u16, text: &str, reason: &str) {
        tracing::info!(peer = %self.peer, code, reason, "smtp command refused");
        self.reply(code, text);
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
    }

    fn protocol_error(&mut self, error: &ProtoError) {
        match error {
            ProtoError::UnknownCommand => self.refuse(500, "5.5.1 Command not recognised", "unknown command"),
            ProtoError::ResponseTooLong => self.refuse(500, "5.5.2 Line too long", "line too long"),
            other => self.refuse(501, "5.5.4 Syntax error in parameters", &format!("{other:?}")),
        }
    }

    async fn command(&mut self, request: Request<String>) -> Reading {
        match request {
            Request::Ehlo { host } => {
                self.reset();
                self.helo = Some(host);
                let max = self.config.max_message_bytes;
                let text = format!("250-{}\r\n250-SIZE {max}\r\n250-8BITMIME\r\n250 PIPELINING\r\n", self.config.hostname);
                self.out.extend_from_slice(text.as_bytes());
            }
            Request::Helo { host } => {
                self.reset();
                self.helo = Some(host);
                let hostname = self.config.hostname.clone();
                self.reply(250, &hostname);
            }
            Request::Mail { from } => {
                if self.helo.is_none() {
                    self.refuse(503, "5.5.1 Say EHLO first", "MAIL before EHLO");
                } else if self.mail_from.is_some() {
                    self.refuse(503, "5.5.1 Sender already given", "second MAIL in a transaction");
                } else if from.size > self.config.max_message_bytes {
                    self.refuse(552, "5.3.4 Message too big", "declared SIZE over the limit");
                } else {
                    self.mail_from = Some(from.address.to_lowercase());
                    self.reply(250, "2.1.0 OK");
                }
            }
            Request::Rcpt { to } => {
                if self.mail_from.is_none() {
                    self.refuse(503, "5.5.1 Need MAIL first", "RCPT before MAIL");
                } else if self.rcpt_to.len() >= self.config.max_recipients {
                    self.refuse(452, "4.5.3 Too many recipients", "too many recipients");
                } else if self.handler.accept_rcpt(&to.address).await {
                    self.rcpt_to.push(to.address.to_lowercase());
                    self.reply(250, "2.1.5 OK");
                } else {
                    let reason = format!("unknown recipient {}", to.address);
                    self.refuse(550, "5.1.1 No such recipient here", &reason);
                }
            }
            Request::Data => {
                if self.rcpt_to.is_empty() {
                    self.refuse(503, "5.5.1 Need RCPT first", "DATA without recipients");
                } else {
                    self.reply(354, "Start mail input; end with <CRLF>.<CRLF>");
                    return Reading::Data(DataReceiver::new(), Vec::new());
                }
            }
            Request::Rset => {
                self.reset();
                self.reply(250, "2.0.0 OK");
            }
            Request::Noop { .. } => self.reply(250, "2.0.0 OK"),
            Request::Vrfy { .. } => self.reply(252, "2.5.0 Cannot verify, but will accept and attempt delivery"),
            Request::Quit => {
                self.reply(221, "2.0.0 Bye");
                self.quit = true;
            }
            other => {
                let reason = format!("{} not supported", other.name());
                self.refuse(502, "5.5.1 Command not implemented", &reason);
            }
        }
        Reading::Commands
    }

    async fn deliver(&mut self, message: Vec<u8>) {
        let envelope = Envelope {
            peer: self.peer,
            helo: self.helo.clone().unwrap_or_default(),
            mail_from: self.mail_from.clone().unwrap_or_default(),
            rcpt_to: std::mem::take(&mut self.rcpt_to),
        };
        self.reset();
        match self.handler.deliver(envelope, message).await {
            Delivery::Accepted => self.reply(250, "2.0.0 Message accepted"),
            Delivery::Rejected(reason) => self.refuse(550, &format!("5.7.1 {}", one_line(&reason)), &reason),
            Delivery::TempFailure(reason) => self.refuse(451, &format!("4.3.0 {}", one_line(&reason)), &reason),
        }
    }
}

/// A reason goes on one response line: no line breaks from the handler.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(400).collect()
}
