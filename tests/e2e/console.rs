//! The operator console as the gateway serves it: embedded, cache-busted, compressed, under a
//! strict Content-Security-Policy, with nothing from outside and no way for a device's text to
//! become markup. (The page in a real browser: the console's browser test.)

use crate::common::*;

async fn fetch(env: &Env, path: &str) -> reqwest::Response {
    env.client
        .get(env.gw.url(path))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_embedded_cache_busted_and_locked_down() {
    let env = Env::start(&["lanjiang"], |_| {}).await;
    let page = fetch(&env, "/").await;
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().unwrap();
    for rule in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(rule), "{csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-cache");
    let mut shipped = page.content_length().unwrap_or(0);
    let html = reqwest::Client::new()
        .get(env.gw.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    // assets by digest-carrying names, cached for good, compressed
    let assets: Vec<String> = html
        .split('"')
        .filter(|s| s.starts_with("/assets/"))
        .map(String::from)
        .collect();
    assert_eq!(assets.len(), 2, "{html}");
    let mut texts = vec![html.clone()];
    for a in &assets {
        let name = a.trim_start_matches("/assets/");
        let digest = name.split('.').nth(1).unwrap();
        assert!(
            digest.len() == 8 && digest.chars().all(|c| c.is_ascii_hexdigit()),
            "{a}"
        );
        let r = fetch(&env, a).await;
        assert_eq!(r.status(), 200, "{a}");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(r.headers()["content-encoding"], "gzip", "{a}");
        assert!(r.headers().contains_key("content-security-policy"));
        let body = r.bytes().await.unwrap();
        shipped += body.len() as u64;
        let plain = reqwest::get(env.gw.url(a))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        texts.push(plain);
    }
    assert_eq!(fetch(&env, "/assets/app.00000000.js").await.status(), 404);
    assert!(shipped < 300 * 1024, "{shipped} bytes for the first load");

    // nothing from outside, no inline script, no text that can become markup
    for text in &texts {
        // the SVG namespace is a name, never fetched
        let text = text.replace("\"http://www.w3.org/2000/svg\"", "");
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "an external URL"
        );
    }
    assert!(
        !html.contains("<script>") && !html.contains(" on"),
        "inline script in the page"
    );
    let js = &texts[1..].join("\n");
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!js.contains(sink), "the console uses {sink}");
    }
    assert!(
        !js.contains("?token") && !js.contains("&token"),
        "a token in a URL"
    );
}
