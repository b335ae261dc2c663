use super::*;
use proptest::prelude::*;

const CATALOG: &str = "<?xml version=\"1.0\" encoding=\"GB2312\"?>
<Response>
<CmdType>Catalog</CmdType>
<SN>17430</SN>
<DeviceID>34020000001180000001</DeviceID>
<SumNum>2</SumNum>
<DeviceList Num=\"1\">
<Item>
<DeviceID>34020000001310000001</DeviceID>
<Name>北门 A&B 萳</Name>
<CivilCode>340200</CivilCode>
<Address>东路&lt;1号&gt;</Address>
<ParentID>34020000001180000001</ParentID>
<Status>ON</Status>
<Longitude>118.1234</Longitude>
<Latitude>0</Latitude>
</Item>
</DeviceList>
</Response>
";

#[test]
fn a_gbk_catalog_page_is_read_with_its_names() {
    let bytes = Charset::Gb18030.encode(CATALOG);
    assert!(std::str::from_utf8(&bytes).is_err());
    let body = read(&bytes).unwrap();
    assert_eq!(body.charset, Charset::Gb18030);
    assert!(body.is("response", "catalog"));
    assert_eq!(body.sn, Some(17430));
    let (sum, items) = catalog(&body);
    assert_eq!(sum, Some(2));
    assert_eq!(items.len(), 1);
    let it = &items[0];
    assert_eq!(it.name.as_deref(), Some("北门 A&B 萳"));
    assert_eq!(it.address.as_deref(), Some("东路<1号>"));
    assert_eq!(it.status.as_deref(), Some("ON"));
    assert_eq!(it.longitude, Some(118.1234));
    assert_eq!(it.latitude, None);
    // the same declared GB2312 but sent as UTF-8
    let body = read(CATALOG.as_bytes()).unwrap();
    assert_eq!(body.charset, Charset::Utf8);
    assert_eq!(catalog(&body).1[0].name.as_deref(), Some("北门 A&B 萳"));
}

#[test]
fn lower_case_tags_a_broken_tail_and_nul_bytes_still_read() {
    let alarm_xml = "<Notify>\0<cmdtype>Alarm</cmdtype><sn>9</sn><DeviceID>34020000001310000002</DeviceID><AlarmPriority>1</AlarmPriority><AlarmMethod>5</AlarmMethod><info><AlarmType>2</AlarmType></info><AlarmDescription>移动侦测</AlarmDescription><Broken";
    let body = read(alarm_xml.as_bytes()).unwrap();
    let a = alarm(&body);
    assert_eq!(a.subject, "34020000001310000002");
    assert_eq!(a.priority, Some(1));
    assert_eq!(a.method.as_deref(), Some("5"));
    assert_eq!(a.alarm_type.as_deref(), Some("2"));
    assert_eq!(a.description.as_deref(), Some("移动侦测"));
    assert_eq!(read(b"not xml at all"), Err(BodyError::NotXml));
    assert_eq!(
        read(b"<Notify><SN>1</SN></Notify>"),
        Err(BodyError::NoCmdType)
    );
}

#[test]
fn status_words() {
    assert_eq!(status_on("on"), Some(true));
    assert_eq!(status_on("ONLINE"), Some(true));
    assert_eq!(status_on("VLOST"), Some(false));
    assert_eq!(status_on("maybe"), None);
}

#[test]
fn a_deep_or_wide_document_is_cut_to_the_bounds() {
    let deep = "<a>".repeat(10_000);
    let root = parse_tree(&deep).unwrap();
    let mut depth = 0;
    let mut n = &root;
    while let Some(c) = n.children.first() {
        depth += 1;
        n = c;
    }
    assert!(depth < MAX_DEPTH);
    let wide = format!("<a>{}</a>", "<b>x</b>".repeat(MAX_NODES * 2));
    assert!(parse_tree(&wide).unwrap().children.len() < MAX_NODES);
    let long = format!("<a>{}</a>", "y".repeat(MAX_TEXT * 4));
    assert_eq!(parse_tree(&long).unwrap().text.len(), MAX_TEXT);
}

proptest! {
    #[test]
    fn any_bytes_read_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = read(&bytes);
    }

    #[test]
    fn any_xml_like_text_reads_without_panic(s in "(<[A-Za-z]{1,6}>|</[A-Za-z]{1,6}>|&[a-z#0-9]{0,5};?|[^<&]{0,12}){0,64}") {
        let _ = read(s.as_bytes());
    }
}
