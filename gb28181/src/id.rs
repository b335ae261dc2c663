//! GB/T 28181 identifiers: 20 decimal digits — centre code (8, the administrative division),
//! industry (2), type (3), network (1), serial (6).

/// Whether `s` is a 20-digit GB/T 28181 id.
pub fn is_id(s: &str) -> bool {
    s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The type code (digits 11–13: 118 NVR, 131 camera, 132 IPC, 215 business group…).
pub fn type_code(id: &str) -> Option<u16> {
    if !is_id(id) {
        return None;
    }
    id[10..13].parse().ok()
}

/// The SIP domain of a server id: its first 10 digits.
pub fn domain_of(id: &str) -> &str {
    &id[..id.len().min(10)]
}

/// Whether a catalog item with this id is a camera: an IPC (132), a camera (131), or a DVR,
/// video server, encoder or NVR that lists itself as its one channel (111, 112, 113, 118).
/// Regions (ids of 8 digits or fewer), business groups (215), virtual organisations (216),
/// alarm inputs and outputs and other peripherals are not.
pub fn is_camera(id: &str) -> bool {
    matches!(type_code(id), Some(111 | 112 | 113 | 118 | 131 | 132))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_types_and_cameras() {
        assert!(is_id("34020000001320000001"));
        assert!(!is_id("3402000000132000000"));
        assert!(!is_id("3402000000132000000x"));
        assert_eq!(type_code("34020000001320000001"), Some(132));
        assert_eq!(type_code("34020000002000000001"), Some(200));
        assert_eq!(domain_of("34020000002000000001"), "3402000000");
        assert!(is_camera("34020000001310000001"));
        assert!(!is_camera("34020000002150000001"));
        assert!(!is_camera("34020000001340000001"));
        assert!(!is_camera("340200"));
    }
}
