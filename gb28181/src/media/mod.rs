//! Media for pictures on demand: RTP carrying an MPEG program stream (GB/T 28181 Annex C), cut
//! down to what a snapshot needs — the first video keyframe as an Annex B access unit.

pub mod ps;
pub mod rtp;

/// The video codec of a program stream (its PSM's stream type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// H.264 (stream type 0x1B).
    H264,
    /// H.265 (stream type 0x24).
    H265,
}

/// How a channel's stream reaches the gateway (the three ways GB/T 28181 devices send it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaTransport {
    /// RTP over TCP, the gateway listening on a fresh port (`a=setup:passive`): the device
    /// connects. What most devices do, and what passes NAT from the device's side.
    #[default]
    TcpPassive,
    /// RTP over TCP, the gateway connecting to the port in the device's answer
    /// (`a=setup:active`): for devices that only listen.
    TcpActive,
    /// RTP over UDP to a port the gateway bound (`RTP/AVP`): for devices without TCP media;
    /// a pack that lost a packet is skipped, the next keyframe taken.
    Udp,
}

/// Whether an Annex B access unit holds a keyframe (an IDR for H.264; an IRAP for H.265).
pub fn is_keyframe(codec: Codec, au: &[u8]) -> bool {
    nal_types(au).any(|b| match codec {
        Codec::H264 => b & 0x1F == 5,
        Codec::H265 => (16..=21).contains(&((b >> 1) & 0x3F)),
    })
}

/// The first byte of each NAL unit of an Annex B stream.
fn nal_types(au: &[u8]) -> impl Iterator<Item = u8> + '_ {
    au.windows(4)
        .filter_map(|w| (w[0] == 0 && w[1] == 0 && w[2] == 1).then_some(w[3]))
}
