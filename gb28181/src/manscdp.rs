//! MANSCDP, the XML bodies of GB/T 28181 MESSAGEs and NOTIFYs: decoded whatever charset the
//! device really used (UTF-8 when the bytes are UTF-8, else GB18030, a superset of the GB2312
//! and GBK that declarations name), parsed leniently into a small tree (tag names compared
//! without case; bare `&`, NUL bytes and a broken tail are tolerated: what parsed is kept),
//! then read into the few messages the gateway uses.
//!
//! Bounds: the body is at most one SIP message (64 KiB); the tree at most [`MAX_NODES`]
//! elements, [`MAX_DEPTH`] deep, each text at most [`MAX_TEXT`] characters.

use encoding_rs::GB18030;
use quick_xml::events::Event;
use quick_xml::Reader;
use serde::Serialize;

/// Elements kept at most.
pub const MAX_NODES: usize = 20_000;
/// Nesting kept at most.
pub const MAX_DEPTH: usize = 16;
/// Characters of one element's text kept at most.
pub const MAX_TEXT: usize = 1_024;

/// The charset a device writes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Charset {
    /// GB18030 (GB2312 and GBK are subsets): the standard's "GB2312".
    #[default]
    Gb18030,
    /// UTF-8.
    Utf8,
}

impl Charset {
    /// The name for an XML declaration.
    pub fn label(self) -> &'static str {
        match self {
            Charset::Gb18030 => "GB2312",
            Charset::Utf8 => "UTF-8",
        }
    }

    /// Text in this charset.
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Charset::Utf8 => text.as_bytes().to_vec(),
            Charset::Gb18030 => GB18030.encode(text).0.into_owned(),
        }
    }
}

/// Decodes a body: UTF-8 when it is valid UTF-8 (GB2312 text with Chinese characters almost
/// never is), else GB18030 — whatever the XML declaration claims.
pub fn decode(bytes: &[u8]) -> (String, Charset) {
    let (text, charset) = match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), Charset::Utf8),
        Err(_) => (
            GB18030.decode_without_bom_handling(bytes).0.into_owned(),
            Charset::Gb18030,
        ),
    };
    (text.replace('\0', ""), charset)
}

/// An element: its name, its text (trimmed) and its children.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// The tag name as written.
    pub name: String,
    /// The text directly inside, trimmed.
    pub text: String,
    /// Child elements in order.
    pub children: Vec<Node>,
}

impl Node {
    /// The first child of that name (any case).
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The text of the first child of that name, if not empty.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.as_str())
            .filter(|t| !t.is_empty())
    }

    /// Every child of that name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> {
        self.children
            .iter()
            .filter(move |c| c.name.eq_ignore_ascii_case(name))
    }
}

/// Parses XML text into its root element, leniently: bare `&` are read as text, and when
/// the document breaks off, what parsed so far is kept (closed where it broke). `None` when
/// no element opened at all.
pub fn parse_tree(xml: &str) -> Option<Node> {
    let xml = escape_bare_ampersands(xml);
    let mut reader = Reader::from_str(&xml);
    reader.config_mut().check_end_names = false;
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut nodes = 0usize;
    while let Ok(event) = reader.read_event() {
        match event {
            Event::Start(e) | Event::Empty(e) if nodes >= MAX_NODES || stack.len() >= MAX_DEPTH => {
                let _ = e;
                break;
            }
            Event::Start(e) => {
                nodes += 1;
                stack.push(Node {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Node::default()
                });
            }
            Event::Empty(e) => {
                nodes += 1;
                stack.push(Node {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Node::default()
                });
                close(&mut stack, &mut root);
            }
            Event::Text(t) => push_text(&mut stack, &t.decode().unwrap_or_default()),
            Event::CData(t) => push_text(&mut stack, &t.decode().unwrap_or_default()),
            Event::GeneralRef(r) => {
                let text = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => match r.decode().unwrap_or_default().as_ref() {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => format!("&{other};"),
                    },
                };
                push_text(&mut stack, &text);
            }
            Event::End(_) => {
                close(&mut stack, &mut root);
                if root.is_some() && stack.is_empty() {
                    break;
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    while !stack.is_empty() {
        close(&mut stack, &mut root);
    }
    root
}

fn push_text(stack: &mut [Node], text: &str) {
    if let Some(top) = stack.last_mut() {
        let room = MAX_TEXT.saturating_sub(top.text.chars().count());
        top.text.extend(text.chars().take(room));
    }
}

fn close(stack: &mut Vec<Node>, root: &mut Option<Node>) {
    let Some(mut node) = stack.pop() else { return };
    node.text = node.text.trim().to_string();
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => {
            if root.is_none() {
                *root = Some(node);
            }
        }
    }
}

/// `&` that starts no entity reference becomes `&amp;` (devices write `A&B` in names).
fn escape_bare_ampersands(xml: &str) -> std::borrow::Cow<'_, str> {
    if !xml.contains('&') {
        return xml.into();
    }
    let mut out = String::with_capacity(xml.len() + 16);
    let mut rest = xml;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let entity = after
            .find(';')
            .filter(|&j| j > 0 && j <= 10)
            .map(|j| &after[..j])
            .is_some_and(|name| {
                name.strip_prefix('#').map_or_else(
                    || name.bytes().all(|b| b.is_ascii_alphanumeric()),
                    |n| {
                        n.strip_prefix('x').map_or_else(
                            || n.bytes().all(|b| b.is_ascii_digit()),
                            |h| h.bytes().all(|b| b.is_ascii_hexdigit()),
                        )
                    },
                )
            });
        out.push_str(if entity { "&" } else { "&amp;" });
        rest = after;
    }
    out.push_str(rest);
    out.into()
}

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// No element at all.
    #[error("the body is not XML")]
    NotXml,
    /// An element, but no `CmdType`.
    #[error("the body has no CmdType")]
    NoCmdType,
}

/// A MANSCDP body: its root (`Query`, `Control`, `Notify`, `Response`), command, serial
/// number and subject, and the tree for the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    /// The root element's name.
    pub root: String,
    /// `CmdType` (`Keepalive`, `Catalog`, `Alarm`, `DeviceInfo`, …).
    pub cmd: String,
    /// `SN`.
    pub sn: Option<u64>,
    /// `DeviceID`: the subject (for an NVR, maybe one of its channels).
    pub device: String,
    /// The whole tree.
    pub node: Node,
    /// How it was written.
    pub charset: Charset,
}

impl Body {
    /// Whether the root is `name` (any case).
    pub fn is(&self, root: &str, cmd: &str) -> bool {
        self.root.eq_ignore_ascii_case(root) && self.cmd.eq_ignore_ascii_case(cmd)
    }
}

/// Reads a body.
pub fn read(bytes: &[u8]) -> Result<Body, BodyError> {
    let (text, charset) = decode(bytes);
    let node = parse_tree(&text).ok_or(BodyError::NotXml)?;
    let cmd = node
        .text_of("CmdType")
        .ok_or(BodyError::NoCmdType)?
        .to_string();
    Ok(Body {
        root: node.name.clone(),
        cmd,
        sn: node.text_of("SN").and_then(|s| s.parse().ok()),
        device: node.text_of("DeviceID").unwrap_or_default().to_string(),
        charset,
        node,
    })
}

/// A channel (or grouping node) of a catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct CatalogItem {
    /// Its id.
    pub id: String,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Manufacturer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    /// Model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Administrative division code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub civil_code: Option<String>,
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The parent's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// `Status` as sent (`ON`, `OFF`, `ONLINE`, `OFFLINE`, `OK`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// A catalog NOTIFY's `Event` (`ON`, `OFF`, `VLOST`, `DEFECT`, `ADD`, `DEL`, `UPDATE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Longitude (0 or absent: unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    /// Latitude.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
}

/// The items of a catalog response or notify, and the `SumNum` it announces.
pub fn catalog(body: &Body) -> (Option<usize>, Vec<CatalogItem>) {
    let sum = body.node.text_of("SumNum").and_then(|s| s.parse().ok());
    let items = body
        .node
        .child("DeviceList")
        .map(|list| list.children_named("Item").filter_map(item).collect())
        .unwrap_or_default();
    (sum, items)
}

fn item(n: &Node) -> Option<CatalogItem> {
    let text = |k: &str| n.text_of(k).map(str::to_string);
    let coord = |k: &str| {
        n.text_of(k)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v != 0.0)
    };
    Some(CatalogItem {
        id: n.text_of("DeviceID")?.to_string(),
        name: text("Name"),
        manufacturer: text("Manufacturer"),
        model: text("Model"),
        civil_code: text("CivilCode"),
        address: text("Address"),
        parent: text("ParentID"),
        status: text("Status"),
        event: text("Event"),
        longitude: coord("Longitude"),
        latitude: coord("Latitude"),
    })
}

/// A channel's status word read: `Some(true)` on, `Some(false)` off, `None` not known.
pub fn status_on(word: &str) -> Option<bool> {
    match word.trim().to_ascii_uppercase().as_str() {
        "ON" | "ONLINE" | "OK" => Some(true),
        "OFF" | "OFFLINE" | "VLOST" | "DEFECT" => Some(false),
        _ => None,
    }
}

/// An alarm a device reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Alarm {
    /// The subject (the device or one of its channels).
    pub subject: String,
    /// `AlarmPriority` 1 (most severe) – 4.
    pub priority: Option<u8>,
    /// `AlarmMethod` (digits may be combined: `12`).
    pub method: Option<String>,
    /// `AlarmType` (inside `Info`, or at the root).
    pub alarm_type: Option<String>,
    /// `AlarmTime` as written (local time, no zone).
    pub time: Option<String>,
    /// `AlarmDescription`.
    pub description: Option<String>,
}

/// The alarm of an `Alarm` notify.
pub fn alarm(body: &Body) -> Alarm {
    let n = &body.node;
    let t = |k: &str| n.text_of(k).map(str::to_string);
    Alarm {
        subject: body.device.clone(),
        priority: n.text_of("AlarmPriority").and_then(|p| p.parse().ok()),
        method: t("AlarmMethod"),
        alarm_type: n
            .child("Info")
            .and_then(|i| i.text_of("AlarmType"))
            .or_else(|| n.text_of("AlarmType"))
            .map(str::to_string),
        time: t("AlarmTime"),
        description: t("AlarmDescription"),
    }
}

/// The leaf elements of a response (DeviceInfo, DeviceStatus), by name: what the API shows.
pub fn leaves(body: &Body) -> serde_json::Map<String, serde_json::Value> {
    body.node
        .children
        .iter()
        .filter(|c| c.children.is_empty() && !c.name.eq_ignore_ascii_case("SN"))
        .map(|c| (c.name.clone(), serde_json::Value::from(c.text.clone())))
        .collect()
}

/// A query body (`Catalog`, `DeviceInfo`, `DeviceStatus`) in the device's charset.
pub fn query(cmd: &str, sn: u64, device: &str, charset: Charset) -> Vec<u8> {
    charset.encode(&format!(
        "<?xml version=\"1.0\" encoding=\"{}\"?>\r\n<Query>\r\n<CmdType>{cmd}</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{device}</DeviceID>\r\n</Query>\r\n",
        charset.label()
    ))
}

/// The answer to an alarm: `<Response><CmdType>Alarm</CmdType>…<Result>OK</Result>`.
pub fn alarm_response(sn: u64, device: &str, charset: Charset) -> Vec<u8> {
    charset.encode(&format!(
        "<?xml version=\"1.0\" encoding=\"{}\"?>\r\n<Response>\r\n<CmdType>Alarm</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{device}</DeviceID>\r\n<Result>OK</Result>\r\n</Response>\r\n",
        charset.label()
    ))
}

#[cfg(test)]
mod tests;
