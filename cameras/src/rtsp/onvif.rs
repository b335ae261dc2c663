//! ONVIF metadata: the event notifications a camera sends in its `vnd.onvif.metadata` RTP
//! stream (ONVIF Streaming Specification 5.2.1.1), reduced to what a township acts on:
//! motion and tampering, started or ended.
//!
//! A notification carries a topic (`tns1:RuleEngine/CellMotionDetector/Motion`,
//! `tns1:VideoSource/MotionAlarm`, `tns1:RuleEngine/TamperDetector/Tamper`,
//! `tns1:VideoSource/GlobalSceneChange/ImagingService`, …) and data items
//! (`IsMotion`, `State`, `IsTamper`, …) whose boolean value says whether the condition holds.
//! Vendors differ in the names, so the topic decides the kind and any boolean data item the
//! state. Parsed with quick-xml (namespace prefixes vary by vendor; only local names count).

use quick_xml::events::Event;
use quick_xml::Reader;

pub use alerts::camera::OnvifKind;

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnvifEvent {
    /// Motion or tamper.
    pub kind: OnvifKind,
    /// Whether the condition holds (`false`: it ended).
    pub active: bool,
    /// The topic as sent.
    pub topic: String,
}

fn kind_of(topic: &str) -> Option<OnvifKind> {
    let t = topic.to_ascii_lowercase();
    if t.contains("tamper") || t.contains("globalscenechange") {
        Some(OnvifKind::Tamper)
    } else if t.contains("motion") {
        Some(OnvifKind::Motion)
    } else {
        None
    }
}

/// The motion and tamper notifications of one metadata message (others are ignored; so is
/// what cannot be parsed).
pub fn parse(xml: &[u8]) -> Vec<OnvifEvent> {
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut in_topic = false;
    let mut in_data = false;
    let mut topic = String::new();
    let mut active: Option<bool> = None;
    // a parse error ends the message: what was complete before it counts
    while let Ok(event) = reader.read_event_into(&mut buf) {
        match event {
            Event::Start(e) | Event::Empty(e)
                if in_data && e.local_name().as_ref() == b"SimpleItem" =>
            {
                for a in e.attributes().flatten() {
                    if a.key.local_name().as_ref() == b"Value" {
                        match a.value.as_ref() {
                            b"true" | b"1" => active = Some(true),
                            b"false" | b"0" => active = active.or(Some(false)),
                            _ => {}
                        }
                    }
                }
            }
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"SimpleItem" => {}
            Event::Start(e) => match e.local_name().as_ref() {
                b"NotificationMessage" => {
                    topic.clear();
                    active = None;
                }
                b"Topic" => in_topic = true,
                b"Data" => in_data = true,
                _ => {}
            },
            Event::Text(t) if in_topic => {
                if let Ok(text) = t.decode() {
                    topic.push_str(text.trim());
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"Topic" => in_topic = false,
                b"Data" => in_data = false,
                b"NotificationMessage" => {
                    if let (Some(kind), Some(active)) = (kind_of(&topic), active) {
                        out.push(OnvifEvent {
                            kind,
                            active,
                            topic: topic.clone(),
                        });
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    out
}

/// A metadata message with one notification, as cameras send it (for simulators and tests).
pub fn sample(topic: &str, item: &str, active: bool) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:tns1="http://www.onvif.org/ver10/topics">
<tt:Event><wsnt:NotificationMessage>
<wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">{topic}</wsnt:Topic>
<wsnt:Message><tt:Message UtcTime="2026-11-28T02:00:00Z" PropertyOperation="Changed">
<tt:Source><tt:SimpleItem Name="VideoSourceConfigurationToken" Value="1"/></tt:Source>
<tt:Data><tt:SimpleItem Name="{item}" Value="{active}"/></tt:Data>
</tt:Message></wsnt:Message></wsnt:NotificationMessage></tt:Event>
</tt:MetadataStream>"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn motion_and_tamper_are_read_whatever_the_vendor_names() {
        let e = parse(
            sample(
                "tns1:RuleEngine/CellMotionDetector/Motion",
                "IsMotion",
                true,
            )
            .as_bytes(),
        );
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].kind, e[0].active), (OnvifKind::Motion, true));
        let e = parse(sample("tns1:VideoSource/MotionAlarm", "State", false).as_bytes());
        assert_eq!((e[0].kind, e[0].active), (OnvifKind::Motion, false));
        let e = parse(sample("tns1:RuleEngine/TamperDetector/Tamper", "IsTamper", true).as_bytes());
        assert_eq!((e[0].kind, e[0].active), (OnvifKind::Tamper, true));
        let e = parse(
            sample(
                "tns1:VideoSource/GlobalSceneChange/ImagingService",
                "State",
                true,
            )
            .as_bytes(),
        );
        assert_eq!(e[0].kind, OnvifKind::Tamper);
    }

    #[test]
    fn other_topics_source_items_and_garbage_are_ignored() {
        assert!(
            parse(sample("tns1:Device/Trigger/DigitalInput", "LogicalState", true).as_bytes())
                .is_empty()
        );
        // a `true` among the source items is not the state
        let only_source = sample("tns1:VideoSource/MotionAlarm", "State", true).replace(
            r#"<tt:Data><tt:SimpleItem Name="State" Value="true"/></tt:Data>"#,
            "",
        );
        assert!(parse(only_source.as_bytes()).is_empty());
        assert!(parse(b"<not xml").is_empty());
        assert!(parse(b"").is_empty());
    }
}
