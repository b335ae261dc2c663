//! Decoder throughput on one core: a TCP stream of GB/T 26875.3 frames (the reference's worked
//! frames, in a realistic mix: alarms with descriptions, UITD status, heartbeats) pushed through
//! the streaming decoder in 1,460-byte reads, as TCP segments would arrive.
//!
//! `cargo bench -p ingest --bench gb26875_decode`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ingest::gb26875::{command, Adu, Decoded, Frame, Header, Objects, StreamDecoder, TimeLabel};

fn stream(frames: usize) -> (Vec<u8>, usize) {
    let alarm = Frame::decode(&[
        0x40, 0x40, 0x01, 0x00, 0x01, 0x01, 0x20, 0x3A, 0x09, 0x1A, 0x09, 0x0C, 0x79, 0x03, 0x00,
        0x00, 0x00, 0x00, 0x38, 0x5B, 0x01, 0x00, 0x00, 0x00, 0x30, 0x00, 0x02, 0x02, 0x01, 0x01,
        0x01, 0x28, 0x0A, 0x00, 0x02, 0x00, 0x02, 0x00, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x00, 0x02, 0x3A, 0x09, 0x1A, 0x09, 0x0C,
        0x46, 0x23, 0x23,
    ])
    .expect("the worked alarm");
    let header = alarm.header;
    let uitd = Frame {
        header,
        adu: Some(Adu {
            kind: 21,
            objects: Objects::UitdStatus(vec![(0x08, TimeLabel([2, 58, 9, 26, 9, 12]))]),
        }),
    };
    let heartbeat = Frame {
        header: Header {
            command: command::SEND,
            ..header
        },
        adu: None,
    };
    let kinds = [alarm.encode(), uitd.encode(), heartbeat.encode()];
    let mut out = Vec::new();
    for i in 0..frames {
        out.extend_from_slice(&kinds[i % 3]);
    }
    (out, frames)
}

fn decode(c: &mut Criterion) {
    let (bytes, frames) = stream(3_000);
    let mut g = c.benchmark_group("gb26875 stream decoder");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function(
        format!("{frames} frames, {} bytes, 1460-byte reads", bytes.len()),
        |b| {
            b.iter(|| {
                let mut d = StreamDecoder::new();
                let mut n = 0usize;
                for chunk in bytes.chunks(1460) {
                    d.push(chunk);
                    while let Some(x) = d.decode_next() {
                        if let Decoded::Frame(f) = x {
                            n += f.adu.map_or(1, |_| 1);
                        }
                    }
                }
                assert_eq!(n, frames);
                n
            })
        },
    );
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
