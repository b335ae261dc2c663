//! The GB/T 26875.3 decoder on arbitrary bytes: whole-frame decoding must never panic, and the
//! streaming decoder must never panic nor buffer more than one maximal frame, whatever the
//! bytes and however they are split.
#![no_main]

use ingest::gb26875::stream::MAX_BUFFERED;
use ingest::gb26875::{Frame, StreamDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Frame::decode(data);
    // the first byte picks the read size, as TCP would split the stream
    let chunk = data.first().map_or(1, |b| *b as usize + 1);
    let mut d = StreamDecoder::new();
    for piece in data.chunks(chunk) {
        d.push(piece);
        while d.decode_next().is_some() {}
        assert!(d.buffered() <= MAX_BUFFERED);
    }
});
