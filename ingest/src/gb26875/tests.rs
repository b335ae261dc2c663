use super::*;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

const DEVICE: u64 = 889;
const CENTER: u64 = 88888;
const SENT: TimeLabel = TimeLabel([0x20, 0x3A, 0x09, 0x1A, 0x09, 0x0C]);

const FIRE: &str = "40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 30 00 02 02 01 01 01 28 0A 00 02 00 02 00
20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 00 02 3A 09 1A 09 0C 46 23 23";
const CONFIRM: &str =
    "40 40 01 00 01 01 23 3A 09 1A 09 0C 38 5B 01 00 00 00 79 03 00 00 00 00 00 00 03 AB 23 23";
const POWER: &str = "40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 09 00 02 15 01 08 02 3A 09 1A 09 0C 42 23 23";
const PATROL_ANSWER: &str = "40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 0A 00 02 18 01 20 01 02 3A 09 1A 09 0C 5F 23 23";
const VERSION: &str = "40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 04 00 02 19 01 01 01 C7 23 23";
const READ_STATUS: &str = "40 40 01 00 01 01 20 3A 09 1A 09 0C 38 5B 01 00 00 00 79 03 00 00 00 00 03 00 04 51 01 00 FE 23 23";
const READ_REPLY: &str = "40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 09 00 05 15 01 08 02 3A 09 1A 09 0C 45 23 23";
const SYNC: &str = "40 40 01 00 01 01 20 3A 09 1A 09 0C 38 5B 01 00 00 00 79 03 00 00 00 00 08 00 01 5A 01 02 3A 09 1A 09 0C 7D 23 23";
const PATROL: &str = "40 40 01 00 01 01 20 3A 09 1A 09 0C 38 5B 01 00 00 00 79 03 00 00 00 00 03 00 01 5B 01 0A 0F 23 23";

/// Every worked frame of the reference.
pub(crate) fn golden() -> Vec<Vec<u8>> {
    [
        FIRE,
        CONFIRM,
        POWER,
        PATROL_ANSWER,
        VERSION,
        READ_STATUS,
        READ_REPLY,
        SYNC,
        PATROL,
    ]
    .iter()
    .map(|s| hex(s))
    .collect()
}

#[test]
fn the_fire_alarm_decodes_as_fire_with_its_description_and_time() {
    let f = Frame::decode(&hex(FIRE)).unwrap();
    assert_eq!(f.header.serial, 1);
    assert_eq!(f.header.version, (1, 1));
    assert_eq!((f.header.source, f.header.destination), (DEVICE, CENTER));
    assert_eq!(f.header.command, command::SEND);
    assert_eq!(f.header.time, SENT);
    let adu = f.adu.unwrap();
    assert_eq!(adu.kind, 2);
    let Objects::ComponentStatus(v) = adu.objects else {
        panic!("component status");
    };
    assert_eq!(v.len(), 1);
    let o = &v[0];
    assert_eq!((o.system_type, o.system_addr, o.component_type), (1, 1, 40));
    assert_eq!(o.component_addr, 0x0002000A, "0A 00 02 00, little-endian");
    assert_eq!(o.status, 0x0002, "02 00 is fire (bit 1), not 0x0200");
    assert_eq!(
        o.description_text(),
        None,
        "30 spaces and a NUL: no description"
    );
    let t = o
        .time
        .to_datetime(chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .unwrap();
    assert_eq!(t.to_rfc3339(), "2012-09-26T09:58:02+08:00");
}

#[test]
fn every_worked_frame_decodes_and_encodes_back_byte_for_byte() {
    for bytes in golden() {
        let f = Frame::decode(&bytes).unwrap_or_else(|e| panic!("{e}: {bytes:02X?}"));
        assert_eq!(f.encode(), bytes, "{f:?}");
    }
}

#[test]
fn the_other_worked_frames_mean_what_the_reference_says() {
    let p = Frame::decode(&hex(POWER)).unwrap().adu.unwrap();
    assert_eq!(
        p.objects,
        Objects::UitdStatus(vec![(0x08, TimeLabel([2, 0x3A, 9, 0x1A, 9, 0x0C]))])
    );
    let a = Frame::decode(&hex(PATROL_ANSWER)).unwrap().adu.unwrap();
    assert!(
        matches!(a.objects, Objects::UitdOperation(ref v) if v[0].0 & 0x20 != 0 && v[0].1 == 1)
    );
    let v = Frame::decode(&hex(VERSION)).unwrap().adu.unwrap();
    assert_eq!(v.objects, Objects::UitdVersion(vec![(1, 1)]));
    let r = Frame::decode(&hex(READ_STATUS)).unwrap();
    assert_eq!(r.header.command, command::REQUEST);
    assert_eq!(
        r.adu.unwrap(),
        Adu {
            kind: 81,
            objects: Objects::Request(vec![0])
        }
    );
    let s = Frame::decode(&hex(SYNC)).unwrap().adu.unwrap();
    assert_eq!(
        s.objects,
        Objects::SyncClock(TimeLabel([2, 0x3A, 9, 0x1A, 9, 0x0C]))
    );
    let c = Frame::decode(&hex(PATROL)).unwrap().adu.unwrap();
    assert_eq!(c.objects, Objects::PatrolCheck(10));
}

#[test]
fn confirm_and_deny_are_the_answer_with_addresses_swapped() {
    let alarm = Frame::decode(&hex(FIRE)).unwrap();
    let confirm = Frame {
        header: alarm
            .header
            .answer(command::CONFIRM, TimeLabel([0x23, 0x3A, 9, 0x1A, 9, 0x0C])),
        adu: None,
    };
    assert_eq!(confirm.encode(), hex(CONFIRM));
    let deny = Frame {
        header: alarm
            .header
            .answer(command::DENY, TimeLabel([0x23, 0x3A, 9, 0x1A, 9, 0x0C])),
        adu: None,
    };
    let d = deny.encode();
    assert_eq!(d[26], 6);
    assert_eq!(d[27], 0xAE, "the reference's deny checksum");
}

#[test]
fn rejections_have_typed_reasons() {
    let mut bad_sum = hex(FIRE);
    let at = bad_sum.len() - 3;
    bad_sum[at] ^= 0xFF;
    assert_eq!(Frame::decode(&bad_sum).unwrap_err().reason(), "checksum");
    let mut bad_end = hex(VERSION);
    let at = bad_end.len() - 1;
    bad_end[at] = 0;
    assert_eq!(Frame::decode(&bad_end).unwrap_err(), FrameError::BadEnd);
    let mut bad_cmd = hex(VERSION);
    bad_cmd[26] = 9;
    let sum = bad_cmd[2..bad_cmd.len() - 3]
        .iter()
        .fold(0u8, |s, &b| s.wrapping_add(b));
    let at = bad_cmd.len() - 3;
    bad_cmd[at] = sum;
    assert_eq!(
        Frame::decode(&bad_cmd).unwrap_err(),
        FrameError::UnknownCommand(9)
    );
    let mut bad_count = hex(POWER);
    bad_count[28] = 2; // two objects announced, one sent
    let sum = bad_count[2..bad_count.len() - 3]
        .iter()
        .fold(0u8, |s, &b| s.wrapping_add(b));
    let at = bad_count.len() - 3;
    bad_count[at] = sum;
    assert_eq!(
        Frame::decode(&bad_count).unwrap_err().reason(),
        "truncated_object"
    );
}

#[test]
fn the_stream_decoder_handles_coalesced_split_and_garbage() {
    let mut wire = b"GET / HTTP/1.1\r\n".to_vec();
    wire.extend(hex(FIRE));
    wire.extend(hex(POWER));
    let mut bad = hex(VERSION);
    let at = bad.len() - 3;
    bad[at] ^= 1;
    wire.extend(&bad);
    wire.extend([0x40, 0x23]);
    wire.extend(hex(PATROL_ANSWER));
    // one byte at a time, then all at once: the same results
    for chunk in [1, 7, wire.len()] {
        let mut d = StreamDecoder::new();
        let mut got = Vec::new();
        for piece in wire.chunks(chunk) {
            d.push(piece);
            for x in d.by_ref() {
                got.push(x);
            }
            assert!(d.buffered() <= stream::MAX_BUFFERED + chunk);
        }
        let frames: Vec<u8> = got
            .iter()
            .filter_map(|x| match x {
                Decoded::Frame(f) => f.adu.as_ref().map(|a| a.kind),
                _ => None,
            })
            .collect();
        assert_eq!(frames, [2, 21, 24], "chunks of {chunk}");
        let rejected: Vec<&str> = got
            .iter()
            .filter_map(|x| match x {
                Decoded::Rejected { error, header } => {
                    assert_eq!(
                        header.unwrap().source,
                        DEVICE,
                        "the header is kept for a deny"
                    );
                    Some(error.reason())
                }
                _ => None,
            })
            .collect();
        assert_eq!(rejected, ["checksum"], "chunks of {chunk}");
        let garbage: usize = got
            .iter()
            .map(|x| if let Decoded::Garbage(n) = x { *n } else { 0 })
            .sum();
        assert_eq!(garbage, 16 + 2, "the HTTP line and the stray `@#`");
    }
}

#[test]
fn a_huge_length_does_not_make_the_decoder_wait_for_it() {
    let mut f = hex(VERSION);
    f[24] = 0xFF;
    f[25] = 0xFF;
    let mut d = StreamDecoder::new();
    d.push(&f);
    d.push(&hex(POWER));
    let got: Vec<Decoded> = std::iter::from_fn(|| d.next()).collect();
    assert!(matches!(
        got[0],
        Decoded::Rejected {
            error: FrameError::BadLength(65535),
            ..
        }
    ));
    assert!(got
        .iter()
        .any(|x| matches!(x, Decoded::Frame(f) if f.adu.as_ref().unwrap().kind == 21)));
}

fn time_label() -> impl Strategy<Value = TimeLabel> {
    (0u8..60, 0u8..60, 0u8..24, 1u8..29, 1u8..13, 0u8..100)
        .prop_map(|(s, mi, h, d, mo, y)| TimeLabel([s, mi, h, d, mo, y]))
}

fn adu() -> impl Strategy<Value = Adu> {
    prop_oneof![
        prop::collection::vec(
            (any::<u8>(), any::<u8>(), any::<u16>(), time_label()),
            1..20
        )
        .prop_map(|v| Adu {
            kind: 1,
            objects: Objects::SystemStatus(v)
        }),
        prop::collection::vec(
            (
                any::<u8>(),
                any::<u8>(),
                any::<u8>(),
                any::<u32>(),
                any::<u16>(),
                prop::array::uniform31(any::<u8>()),
                time_label()
            ),
            1..22
        )
        .prop_map(|v| Adu {
            kind: 2,
            objects: Objects::ComponentStatus(
                v.into_iter()
                    .map(|(a, b, c, d, e, f, g)| ComponentStatus {
                        system_type: a,
                        system_addr: b,
                        component_type: c,
                        component_addr: d,
                        status: e,
                        description: f,
                        time: g,
                    })
                    .collect()
            )
        }),
        prop::collection::vec(
            (
                any::<u8>(),
                any::<u8>(),
                any::<u8>(),
                any::<u32>(),
                1u8..13,
                any::<i16>(),
                time_label()
            ),
            1..60
        )
        .prop_map(|v| Adu {
            kind: 3,
            objects: Objects::Analog(
                v.into_iter()
                    .map(|(a, b, c, d, e, f, g)| AnalogValue {
                        system_type: a,
                        system_addr: b,
                        component_type: c,
                        component_addr: d,
                        analog_type: e,
                        value: f,
                        time: g,
                    })
                    .collect()
            )
        }),
        prop::collection::vec((any::<u8>(), time_label()), 1..50).prop_map(|v| Adu {
            kind: 21,
            objects: Objects::UitdStatus(v)
        }),
        (
            128u8..=254,
            0u8..5,
            prop::collection::vec(any::<u8>(), 0..100)
        )
            .prop_map(|(k, c, b)| Adu {
                kind: k,
                objects: Objects::Raw { count: c, bytes: b }
            }),
    ]
}

proptest! {
    #[test]
    fn encode_then_decode_is_the_identity(
        serial in any::<u16>(),
        source in 0u64..(1 << 48),
        destination in 0u64..(1 << 48),
        time in time_label(),
        adu in prop::option::of(adu()),
    ) {
        let f = Frame {
            header: Header { serial, version: (1, 1), time, source, destination, command: command::SEND },
            adu,
        };
        let bytes = f.encode();
        prop_assert_eq!(Frame::decode(&bytes).unwrap(), f.clone());
        let mut d = StreamDecoder::new();
        d.push(&bytes);
        prop_assert_eq!(d.next(), Some(Decoded::Frame(f)));
    }

    #[test]
    fn the_decoder_never_panics_and_stays_bounded(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
        seeds in prop::collection::vec(0usize..9, 0..4),
    ) {
        let golden = golden();
        let mut d = StreamDecoder::new();
        for (i, c) in chunks.iter().enumerate() {
            d.push(c);
            if let Some(&s) = seeds.get(i) {
                d.push(&golden[s]);
            }
            while d.next().is_some() {}
            prop_assert!(d.buffered() <= stream::MAX_BUFFERED);
            let _ = Frame::decode(c);
        }
    }
}

#[test]
fn descriptions_round_trip_through_gb18030_and_are_cut_at_a_character() {
    let d = encode_description("3F 东走廊感烟探测器");
    let o = ComponentStatus {
        system_type: 1,
        system_addr: 1,
        component_type: 42,
        component_addr: 7,
        status: 2,
        description: d,
        time: TimeLabel::default(),
    };
    assert_eq!(o.description_text().as_deref(), Some("3F 东走廊感烟探测器"));
    let long = encode_description(&"火".repeat(40));
    let text = ComponentStatus {
        description: long,
        ..o
    }
    .description_text()
    .unwrap();
    assert_eq!(text, "火".repeat(15), "30 bytes: 15 two-byte characters");
}
