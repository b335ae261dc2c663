//! Simulated GB/T 26875.3 user information transmission devices over TCP: heartbeats, alarms,
//! faults, patrol-check answers, and protocol faults (split and coalesced frames, bad
//! checksums, garbage). Used by the end-to-end tests and the `gbsim` binary.

use ingest::gb26875::{
    command, encode_description, Adu, ComponentStatus, Decoded, Frame, Header, Objects,
    StreamDecoder, TimeLabel,
};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One device.
pub struct Device {
    stream: TcpStream,
    decoder: StreamDecoder,
    /// Its address.
    pub address: u64,
    /// The center's address it sends to.
    pub center: u64,
    serial: u16,
}

/// The device's clock as a time label (+08:00).
pub fn now_label() -> TimeLabel {
    let east8 = chrono::FixedOffset::east_opt(8 * 3600).expect("offset");
    TimeLabel::from_datetime(chrono::Utc::now().with_timezone(&east8))
}

/// A fire alarm of a smoke detector with a description.
pub fn fire_alarm(component_addr: u32, description: &str) -> Adu {
    component_status(component_addr, 0x0002, description)
}

/// A component status (bits as in the standard: 1 fire, 2 fault, …).
pub fn component_status(component_addr: u32, status: u16, description: &str) -> Adu {
    Adu {
        kind: 2,
        objects: Objects::ComponentStatus(vec![ComponentStatus {
            system_type: 1,
            system_addr: 1,
            component_type: 42,
            component_addr,
            status,
            description: encode_description(description),
            time: now_label(),
        }]),
    }
}

impl Device {
    /// Connects to the gateway.
    pub async fn connect(gateway: SocketAddr, address: u64, center: u64) -> std::io::Result<Self> {
        let stream = TcpStream::connect(gateway).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            decoder: StreamDecoder::new(),
            address,
            center,
            serial: 0,
        })
    }

    /// The connection itself (for writing what no device would).
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// A send-data frame with the next serial number (`None`: a heartbeat).
    pub fn frame(&mut self, adu: Option<Adu>) -> Frame {
        self.serial = self.serial.wrapping_add(1);
        Frame {
            header: Header {
                serial: self.serial,
                version: (1, 1),
                time: now_label(),
                source: self.address,
                destination: self.center,
                command: command::SEND,
            },
            adu,
        }
    }

    /// Writes raw bytes (split frames, garbage…).
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The next frame from the gateway (denies included), within `timeout`.
    pub async fn recv(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut buf = [0u8; 1024];
        loop {
            while let Some(d) = self.decoder.decode_next() {
                if let Decoded::Frame(f) = d {
                    return Some(f);
                }
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.decoder.push(&buf[..n]);
        }
    }

    /// Confirms a command the center sent.
    pub async fn confirm(&mut self, command_frame: &Frame) -> std::io::Result<()> {
        let confirm = Frame {
            header: command_frame.header.answer(command::CONFIRM, now_label()),
            adu: None,
        };
        self.write(&confirm.encode()).await
    }

    /// Replies (command 5, the request's serial) to a read of the UITD: status (81) normal,
    /// software version (85) 1.1, clock (88) now. Other reads get no reply.
    pub async fn reply(&mut self, request: &Frame) -> std::io::Result<()> {
        let adu = match request.adu.as_ref().map(|a| a.kind) {
            Some(81) => Adu {
                kind: 21,
                objects: Objects::UitdStatus(vec![(0x01, now_label())]),
            },
            Some(85) => Adu {
                kind: 25,
                objects: Objects::UitdVersion(vec![(1, 1)]),
            },
            Some(88) => Adu {
                kind: 28,
                objects: Objects::UitdTime(vec![now_label()]),
            },
            _ => return Ok(()),
        };
        let reply = Frame {
            header: Header {
                serial: request.header.serial,
                version: (1, 1),
                time: now_label(),
                source: self.address,
                destination: self.center,
                command: command::REPLY,
            },
            adu: Some(adu),
        };
        self.write(&reply.encode()).await
    }

    /// Waits for the next command from the center (control, request), skipping answers.
    pub async fn next_command(&mut self, timeout: Duration) -> Option<Frame> {
        loop {
            let f = self.recv(timeout).await?;
            if matches!(f.header.command, command::CONTROL | command::REQUEST) {
                return Some(f);
            }
        }
    }

    /// Sends a frame and waits for the gateway's answer to it (confirm or deny).
    pub async fn exchange(&mut self, frame: &Frame, timeout: Duration) -> Result<Frame, String> {
        self.write(&frame.encode())
            .await
            .map_err(|e| format!("write: {e}"))?;
        loop {
            let answer = self
                .recv(timeout)
                .await
                .ok_or_else(|| format!("no answer to serial {}", frame.header.serial))?;
            let is_answer = matches!(answer.header.command, command::CONFIRM | command::DENY);
            if is_answer && answer.header.serial == frame.header.serial {
                return Ok(answer);
            }
            // a device confirms the center's commands (clock sync on connect, …) and replies
            // to its reads
            let handled = match answer.header.command {
                command::CONTROL => self.confirm(&answer).await,
                command::REQUEST => self.reply(&answer).await,
                _ => Ok(()),
            };
            handled.map_err(|e| format!("write: {e}"))?;
        }
    }
}

/// The device's answer to a patrol check (type 24, bit 5) by `operator`.
pub fn patrol_answer(operator: u8) -> Adu {
    Adu {
        kind: 24,
        objects: Objects::UitdOperation(vec![(0x20, operator, now_label())]),
    }
}
