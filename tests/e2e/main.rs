//! End-to-end tests: the real `gateway` binary on loopback, a real HTTP receiver that verifies
//! signatures, real `kill -9`.

mod api;
mod assessment;
mod browser;
mod camera_clock;
mod cameras;
mod cases;
mod common;
mod console;
mod conventions;
mod delivery;
mod deploy;
mod disk;
mod gb26875;
mod gb28181;
mod gb28181_sipp;
mod hostile;
mod mqtt;
mod profiles;
mod reload;
mod scenes;
mod supervision;
mod tls;
mod units;
mod video;

/// Waits until a township has received events for exactly the given component addresses.
async fn wait_for_addrs(env: &common::Env, township: &str, want: &std::collections::BTreeSet<u64>) {
    let got = env
        .receiver
        .wait_for(common::WAIT, "every component's alarm", |d| {
            let have: std::collections::BTreeSet<u64> = d
                .iter()
                .filter(|d| d.township == township)
                .filter_map(|d| d.body.as_ref()?["fire"]["component_addr"].as_u64())
                .collect();
            want.is_subset(&have)
        })
        .await;
    if let Err(e) = got {
        panic!("{e}\ngateway log:\n{}", env.gw.log());
    }
}

/// Waits until a simulated GB/T 28181 device has seen what `check` wants.
async fn wait_seen(
    device: &gateway_sim::gb28181sim::SimDevice,
    check: impl Fn(&gateway_sim::gb28181sim::SimSeen) -> bool,
) {
    gateway_sim::wait_until(common::WAIT, "the simulated device", || {
        check(&device.seen()).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {:?}", device.seen()));
}
