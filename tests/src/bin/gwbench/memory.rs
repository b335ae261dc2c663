//! `memory`: the gateway's RSS fresh, under a burst of idle connections and events, and idle
//! again afterwards — where memory goes after a long or hostile run.

use super::*;
use tokio::io::AsyncWriteExt;

fn rss_mib(pid: u32) -> u64 {
    proc_stats_ticks(pid).1 >> 20
}

pub(super) async fn memory(args: &Args, events: u64, connections: usize, idle_s: u64) {
    let receiver = receiver("127.0.0.1:0").await;
    let base = format!("http://{}", receiver.addr());
    let setup = start_gateway(
        args,
        &base,
        &std::env::var("GWBENCH_EXTRA").unwrap_or_default(),
    )
    .await;
    let pid = setup.gw.pid();
    let url = setup.gw.url("");
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("| moment | gateway RSS |");
    println!("|---|---|");
    println!("| fresh, idle | {} MiB |", rss_mib(pid));

    // half-sent requests, held open, then closed
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        match tokio::net::TcpStream::connect(setup.gw.addr).await {
            Ok(mut s) => {
                let _ = s
                    .write_all(b"POST /api/v1/ingest/x/status HTTP/1.1\r\nHost: a\r\n")
                    .await;
                conns.push(s);
            }
            Err(e) => {
                println!("(connections stop at {}: {e})", conns.len());
                break;
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "| {} half-sent requests open | {} MiB |",
        conns.len(),
        rss_mib(pid)
    );
    drop(conns);

    let (accepted, secs) = push_all(&url, &setup.units, 0, events, 16).await;
    wait_delivered(&receiver, accepted, Duration::from_secs(600)).await;
    println!(
        "| {accepted} events pushed and delivered ({:.0}/s) | {} MiB |",
        accepted as f64 / secs,
        rss_mib(pid)
    );
    for waited in 1..=idle_s.div_ceil(10) {
        tokio::time::sleep(Duration::from_secs(10)).await;
        println!("| idle {} s later | {} MiB |", waited * 10, rss_mib(pid));
    }
    let (_, _, peak) = proc_stats_ticks(pid);
    println!("\npeak RSS {} MiB", peak >> 20);
}
