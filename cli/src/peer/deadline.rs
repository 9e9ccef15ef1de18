//! The deadlines of a live peer exchange, and the stream that enforces them (issue 17, fault 6:
//! a timeout per `read` let a peer sending one byte every 20 s hold a slot for good).
//!
//! Three deadlines: the first message from the other side (the handshake) must arrive whole
//! within a short one; every later message, read or written, within the message deadline; and
//! the whole exchange (one connection on `peer serve`, the whole run of `peer connect`) within
//! the exchange deadline. [`DeadlineStream`] enforces them below any framing or encryption: it
//! knows nothing of messages, only that the exchange is half-duplex, so a run of reads is one
//! incoming message and a run of writes one outgoing message. Each read and write waits at most
//! the time left before the nearer of the current message's and the exchange's deadlines.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use clap::Args;

/// The deadlines' flags, shared by `peer serve` and `peer connect`.
#[derive(Args, Clone, Copy, Debug)]
pub struct DeadlineArgs {
    /// Seconds the other side's first message (the handshake) may take to arrive whole.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = seconds)]
    handshake_timeout: Duration,
    /// Seconds any later message may take to arrive (or to be sent) whole.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = seconds)]
    message_timeout: Duration,
    /// Seconds a whole exchange may take: one connection on `peer serve`, the whole run of
    /// `peer connect`.
    #[arg(long, value_name = "SECS", default_value = "600", value_parser = seconds)]
    exchange_timeout: Duration,
}

impl DeadlineArgs {
    /// The deadlines the flags name.
    pub fn deadlines(&self) -> Deadlines {
        Deadlines {
            handshake: self.handshake_timeout,
            message: self.message_timeout,
            exchange: self.exchange_timeout,
        }
    }
}

/// A number of seconds above 0 (fractions allowed: tests use 0.3), at most a day.
fn seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 86_400.0 => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!(
            "{text:?} is not a number of seconds between 0 and 86400 (for example 0.5)"
        )),
    }
}

/// How long each part of a live exchange may take.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    /// The other side's first message.
    pub handshake: Duration,
    /// Every later message, either way.
    pub message: Duration,
    /// The whole exchange.
    pub exchange: Duration,
}

/// Which deadline passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    /// The other side's first message did not arrive whole in time.
    Handshake,
    /// A later message did not arrive (or could not be sent) whole in time.
    Message,
    /// The whole exchange took too long.
    Exchange,
}

/// A deadline that passed: the inner error of the [`io::ErrorKind::TimedOut`] error that a
/// [`DeadlineStream`]'s read or write returns.
#[derive(Debug)]
pub struct DeadlinePassed {
    /// Which one.
    pub which: Deadline,
    /// How long it was.
    pub after: Duration,
}

impl std::fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, within) = match self.which {
            Deadline::Handshake => ("handshake", "its first message did not arrive whole"),
            Deadline::Message => ("message", "a message did not arrive or go out whole"),
            Deadline::Exchange => ("exchange", "the exchange did not finish"),
        };
        let secs = self.after.as_secs_f64();
        write!(f, "the {what} deadline passed ({within} within {secs} s)")
    }
}

impl std::error::Error for DeadlinePassed {}

impl DeadlinePassed {
    /// The deadline that `error` reports passed, if it is one (anywhere in an error chain).
    pub fn in_chain(error: &anyhow::Error) -> Option<&DeadlinePassed> {
        error.chain().find_map(|cause| {
            cause
                .downcast_ref::<io::Error>()
                .and_then(|e| e.get_ref())
                .and_then(|inner| inner.downcast_ref::<DeadlinePassed>())
                .or_else(|| cause.downcast_ref::<DeadlinePassed>())
        })
    }
}

/// Which way the bytes of the current message go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Reading,
    Writing,
}

/// A TCP stream whose every read and write ends by the current message's and the exchange's
/// deadlines; past one, it returns a [`DeadlinePassed`] error and does no more IO.
pub struct DeadlineStream {
    stream: TcpStream,
    deadlines: Deadlines,
    exchange_ends: Instant,
    /// The current message's direction, deadline and which deadline that is.
    current: Option<(Direction, Instant, Deadline)>,
    /// True once a message from the other side started (the first one is the handshake).
    heard: bool,
}

impl DeadlineStream {
    /// Wraps `stream`; the exchange's clock starts now.
    pub fn new(stream: TcpStream, deadlines: Deadlines) -> DeadlineStream {
        DeadlineStream {
            stream,
            deadlines,
            exchange_ends: Instant::now() + deadlines.exchange,
            current: None,
            heard: false,
        }
    }

    /// The time left for one read or write going `direction`: a change of direction starts
    /// the next message and its deadline.
    fn time_left(&mut self, direction: Direction) -> io::Result<Duration> {
        let now = Instant::now();
        let (ends, which) = match self.current {
            Some((current, ends, which)) if current == direction => (ends, which),
            _ => {
                let (after, which) = match direction {
                    Direction::Reading if !self.heard => {
                        (self.deadlines.handshake, Deadline::Handshake)
                    }
                    _ => (self.deadlines.message, Deadline::Message),
                };
                self.heard |= direction == Direction::Reading;
                let ends = now + after;
                self.current = Some((direction, ends, which));
                (ends, which)
            }
        };
        let (ends, which) = if self.exchange_ends < ends {
            (self.exchange_ends, Deadline::Exchange)
        } else {
            (ends, which)
        };
        match ends.checked_duration_since(now) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(self.passed(which)),
        }
    }

    /// The error for `which` deadline.
    fn passed(&self, which: Deadline) -> io::Error {
        let after = match which {
            Deadline::Handshake => self.deadlines.handshake,
            Deadline::Message => self.deadlines.message,
            Deadline::Exchange => self.deadlines.exchange,
        };
        io::Error::new(io::ErrorKind::TimedOut, DeadlinePassed { which, after })
    }

    /// A socket timeout becomes the deadline it stood for.
    fn timed_out(&self, error: io::Error) -> io::Error {
        match (error.kind(), self.current) {
            (io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut, Some((_, ends, which))) => {
                if self.exchange_ends <= ends {
                    self.passed(Deadline::Exchange)
                } else {
                    self.passed(which)
                }
            }
            _ => error,
        }
    }
}

impl DeadlineStream {
    /// Reads without consuming (the next read returns the same bytes), within the same
    /// deadlines as a read.
    pub fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.time_left(Direction::Reading)?;
        self.stream.set_read_timeout(Some(left))?;
        self.stream.peek(buf).map_err(|e| self.timed_out(e))
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.time_left(Direction::Reading)?;
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf).map_err(|e| self.timed_out(e))
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.time_left(Direction::Writing)?;
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write(buf).map_err(|e| self.timed_out(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair(deadlines: Deadlines) -> (DeadlineStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (DeadlineStream::new(server, deadlines), client)
    }

    fn short(handshake: f64, message: f64, exchange: f64) -> Deadlines {
        Deadlines {
            handshake: Duration::from_secs_f64(handshake),
            message: Duration::from_secs_f64(message),
            exchange: Duration::from_secs_f64(exchange),
        }
    }

    fn passed(error: &io::Error) -> Deadline {
        error
            .get_ref()
            .and_then(|e| e.downcast_ref::<DeadlinePassed>())
            .map(|p| p.which)
            .unwrap_or_else(|| panic!("not a deadline: {error}"))
    }

    /// Trickles one byte every 50 ms for as long as the other side reads.
    fn trickle(mut client: TcpStream) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            while client.write_all(b"x").is_ok() {
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    }

    /// Issue 17 (fault 6): bytes that keep coming do not stretch a message's deadline.
    #[test]
    fn a_trickled_first_message_passes_the_handshake_deadline() {
        let (mut stream, client) = pair(short(0.3, 30.0, 30.0));
        let worker = trickle(client.try_clone().unwrap());
        let started = Instant::now();
        let mut message = vec![0; 1000];
        let error = stream.read_exact(&mut message).unwrap_err();
        assert_eq!(passed(&error), Deadline::Handshake);
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(started.elapsed() < Duration::from_secs(20));
        drop(stream);
        client.shutdown(std::net::Shutdown::Both).unwrap();
        worker.join().unwrap();
    }

    #[test]
    fn later_messages_have_the_message_deadline_and_all_the_exchange_deadline() {
        let (mut stream, mut client) = pair(short(5.0, 0.3, 30.0));
        client.write_all(b"hello").unwrap();
        let mut first = [0; 5];
        stream.read_exact(&mut first).unwrap();
        stream.write_all(b"reply").unwrap();
        let error = stream.read(&mut first).unwrap_err();
        assert_eq!(passed(&error), Deadline::Message);

        let (mut stream, _client) = pair(short(5.0, 5.0, 0.3));
        let error = stream.read(&mut first).unwrap_err();
        assert_eq!(passed(&error), Deadline::Exchange);
        // Past it, nothing more is tried.
        let error = stream.write(b"x").unwrap_err();
        assert_eq!(passed(&error), Deadline::Exchange);
    }
}
