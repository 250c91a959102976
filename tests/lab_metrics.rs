//! The daemon's metrics in the lab (issue 26): the seed policy with `[Metrics] Listen=` on the
//! lab host's loopback and a `TextfileDirectory=`, scraped from inside the lab host (never the
//! root namespace). The families and their values follow a silent failure of eth0 within
//! seconds (up 0, one more transition, wlan1 active) and its repair; the textfile has the same
//! families; `promtool check metrics` accepts a real scrape. And the real Prometheus, run inside
//! the lab host, sees the same failure and the repair, and answers every query of the shipped
//! Grafana dashboard (grafana/multihome-dashboard.json), whose metrics the scrape has.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use multihome::lab::netns::in_netns;
use multihome::lab::policies::SEED;
use multihome::lab::{Lab, LabOptions, Manager};

use common::binary;
use common::lab::require;
use common::tools::require_tool;

#[allow(dead_code)]
mod common;

/// The listener's port on the lab host's own loopback (each lab has its own namespace).
const PORT: u16 = 9731;

/// `GET path` of a server on the lab host's loopback at `port`, from inside the lab host (never
/// the root namespace), with `headers` (each ending in CRLF): the answer's head and body.
fn http_get(lab: &Lab, port: u16, path: &str, headers: &str) -> anyhow::Result<(String, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\r\n");
    let answer = in_netns(&lab.host(), move || {
        let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(request.as_bytes())?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    })?;
    let (head, body) = answer.split_once("\r\n\r\n").ok_or_else(|| anyhow::anyhow!("no HTTP head in {answer:?}"))?;
    Ok((head.to_string(), body.to_string()))
}

/// One `GET /metrics` of the daemon: the answer's head and body.
fn scrape(lab: &Lab, openmetrics: bool) -> anyhow::Result<(String, String)> {
    let accept = if openmetrics { "Accept: application/openmetrics-text; version=1.0.0,text/plain;q=0.5\r\n" } else { "" };
    http_get(lab, PORT, "/metrics", accept)
}

/// The value of the sample `series` (name and labels as rendered), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn up(uplink: &str) -> String {
    format!("multihome_uplink_up{{uplink=\"{uplink}\",family=\"ipv4\"}}")
}

fn series(name: &str, uplink: &str) -> String {
    format!("{name}{{uplink=\"{uplink}\",family=\"ipv4\"}}")
}

/// The families a text declares (its `# TYPE` lines), in order.
fn families(text: &str) -> Vec<String> {
    text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).map(str::to_string).collect()
}

/// The changes of `uplink`'s IPv4 state the daemon logged (`eth0: up -> degraded (...)`).
fn logged_transitions(lab: &Lab, uplink: &str) -> f64 {
    daemon_log(lab).lines().filter(|l| l.starts_with(&format!("{uplink}: ")) && l.contains(" -> ")).count() as f64
}

fn daemon_log(lab: &Lab) -> String {
    (0..4).map(|n| lab.log(&format!("spawned-{n}.log"))).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n---\n")
}

/// Waits until a scrape satisfies `cond`; the error shows the last scrape and the daemon's log.
fn scrape_until(lab: &Lab, within: Duration, what: &str, cond: impl Fn(&str) -> bool) -> anyhow::Result<String> {
    let mut last = String::new();
    let ok = lab.wait_for(within, || {
        last = scrape(lab, true).map(|(_, b)| b).unwrap_or_default();
        cond(&last)
    });
    ok.map_err(|e| anyhow::anyhow!("{what}: {e}\nlast scrape:\n{last}\ndaemon:\n{}", daemon_log(lab)))?;
    Ok(last)
}

/// `promtool check metrics` on `text`; `None` without promtool outside CI.
fn promtool_check(text: &str) -> Option<String> {
    if !require_tool("promtool", "the scrape's syntax (promtool check metrics)") {
        return None;
    }
    let mut child = Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics complains:\n{said}\non:\n{text}");
    Some(said)
}

/// eth0's mean round trip over the next `span`, from the histogram's sum and count.
fn mean_rtt_over(lab: &Lab, span: Duration) -> anyhow::Result<f64> {
    let sum = "multihome_uplink_rtt_seconds_sum{uplink=\"eth0\",family=\"ipv4\"}";
    let count = "multihome_uplink_rtt_seconds_count{uplink=\"eth0\",family=\"ipv4\"}";
    let read = |t: &str| (value(t, sum).unwrap_or(0.0), value(t, count).unwrap_or(0.0));
    let (s0, c0) = read(&scrape(lab, true)?.1);
    std::thread::sleep(span);
    let (s1, c1) = read(&scrape(lab, true)?.1);
    anyhow::ensure!(c1 > c0, "no round trip in {span:?}");
    Ok((s1 - s0) / (c1 - c0))
}

fn textfile(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("multihome.prom")).unwrap_or_default()
}

#[test]
fn a_silent_failure_of_eth0_shows_in_the_metrics_and_the_textfile() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    // The directory is made first: the lab's directory is visible inside the lab host.
    let mut lab = Lab::start(LabOptions { policy: Some(SEED.to_string()), ..LabOptions::new(Manager::Networkd, binary()) })?;
    let dir = lab.dir().join("textfile");
    std::fs::create_dir_all(&dir)?;
    lab.write_policy(&format!("{SEED}\n[Metrics]\nListen=127.0.0.1:{PORT}\nTextfileDirectory={}\n", dir.display()))?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    lab.spawn_multihome(&["daemon"])?;

    let seed = ["eth0", "wlan1", "wlan0"];
    let body = scrape_until(&lab, Duration::from_secs(10), "every uplink up", |t| seed.iter().all(|u| value(t, &up(u)) == Some(1.0)))?;
    let (head, _) = scrape(&lab, true)?;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8"), "{head}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert_eq!(value(&body, &series("multihome_uplink_active", "eth0")), Some(1.0), "{body}");
    assert_eq!(value(&body, &series("multihome_uplink_active", "wlan1")), Some(0.0), "{body}");
    assert_eq!(value(&body, "multihome_uplink_state{uplink=\"eth0\",family=\"ipv4\",state=\"up\"}"), Some(1.0), "{body}");
    assert!(body.contains(&format!("multihome_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))), "{body}");
    assert_eq!(value(&body, "multihome_probe_max_loss_ratio"), Some(0.5), "the seed's MaxLoss= is the default");
    let sent = value(&body, &series("multihome_probes_sent_total", "eth0")).unwrap();
    assert!(sent > 0.0, "{body}");
    assert!(value(&body, "multihome_uplink_rtt_seconds_count{uplink=\"eth0\",family=\"ipv4\"}").unwrap() > 0.0, "{body}");
    let before = value(&body, &series("multihome_uplink_transitions_total", "eth0")).unwrap();
    assert_eq!(before, logged_transitions(&lab, "eth0"), "the counter and the journal disagree\n{}", daemon_log(&lab));

    // The classic text format (what promtool and node_exporter read) passes promtool's lint.
    let (plain_head, plain) = scrape(&lab, false)?;
    assert!(plain_head.contains("Content-Type: text/plain; version=0.0.4"), "{plain_head}");
    promtool_check(&plain);
    // The textfile: written at the start, the same families as a scrape.
    lab.wait_for(Duration::from_secs(5), || value(&textfile(&dir), &up("eth0")) == Some(1.0))?;
    assert_eq!(families(&textfile(&dir)), families(&plain), "the textfile and a scrape show different families");

    // Scrapes cost the probes nothing: 4 scrapers in a loop for 3 s change no state, and the
    // mean round trip stays that of 3 s without them.
    let idle = mean_rtt_over(&lab, Duration::from_secs(3))?;
    let (loaded, scrapes) = {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let host = lab.host();
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (stop, count, host) = (stop.clone(), count.clone(), host.clone());
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let got = in_netns(&host, || {
                            let mut s = TcpStream::connect(("127.0.0.1", PORT))?;
                            s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n")?;
                            let mut b = Vec::new();
                            s.read_to_end(&mut b)?;
                            Ok(b.len())
                        });
                        if got.is_ok_and(|n| n > 0) {
                            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        let loaded = mean_rtt_over(&lab, Duration::from_secs(3));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        workers.into_iter().for_each(|w| w.join().unwrap());
        (loaded?, count.load(std::sync::atomic::Ordering::Relaxed))
    };
    eprintln!("eth0's mean round trip: {:.3} ms without scrapers, {:.3} ms during {scrapes} scrapes in 3 s", idle * 1e3, loaded * 1e3);
    assert!(scrapes >= 100, "only {scrapes} scrapes in 3 s");
    let after_load = scrape(&lab, true)?.1;
    assert_eq!(
        value(&after_load, &series("multihome_uplink_transitions_total", "eth0")),
        Some(before),
        "a state changed under the scrapes\n{}",
        daemon_log(&lab)
    );
    assert!(loaded < idle + 0.002, "the scrapes slowed the probes: {idle} s -> {loaded} s");

    // eth0 fails silently: carrier stays, nothing behind its switch answers.
    lab.set_upstream("eth0", false)?;
    let t0 = std::time::Instant::now();
    let down = scrape_until(&lab, Duration::from_secs(5), "eth0 up 0", |t| value(t, &up("eth0")) == Some(0.0))?;
    eprintln!("eth0 up 0 in the metrics after {:?}", t0.elapsed());
    assert_eq!(value(&down, "multihome_uplink_state{uplink=\"eth0\",family=\"ipv4\",state=\"down\"}"), Some(1.0), "{down}");
    // Each change of state counts, as the journal logs it: up -> degraded -> down.
    let failed = value(&down, &series("multihome_uplink_transitions_total", "eth0")).unwrap();
    assert!(failed > before, "{down}");
    assert_eq!(failed, logged_transitions(&lab, "eth0"), "the counter and the journal disagree\n{}", daemon_log(&lab));
    let active = scrape_until(&lab, Duration::from_secs(2), "wlan1 active", |t| value(t, &series("multihome_uplink_active", "wlan1")) == Some(1.0))?;
    assert_eq!(value(&active, &series("multihome_uplink_active", "eth0")), Some(0.0), "{active}");
    assert!(value(&active, &series("multihome_probes_lost_total", "eth0")).unwrap() > 0.0, "{active}");
    // The textfile follows the change at once (not at its 15 s refresh).
    lab.wait_for(Duration::from_secs(2), || value(&textfile(&dir), &up("eth0")) == Some(0.0))
        .map_err(|e| anyhow::anyhow!("the textfile did not follow: {e}\n{}", textfile(&dir)))?;

    // Repair: back up, one more transition.
    lab.set_upstream("eth0", true)?;
    let back = scrape_until(&lab, Duration::from_secs(10), "eth0 up again", |t| value(t, &up("eth0")) == Some(1.0))?;
    let repaired = value(&back, &series("multihome_uplink_transitions_total", "eth0")).unwrap();
    assert!(repaired > failed, "{back}");
    assert_eq!(repaired, logged_transitions(&lab, "eth0"), "the counter and the journal disagree\n{}", daemon_log(&lab));
    eprintln!("eth0's transitions: {before} at start, {failed} after the failure, {repaired} after the repair");

    // A reload keeps the listener where it is, and the journal says that a change needs a restart.
    lab.write_policy(&format!("{SEED}\n[Metrics]\nListen=127.0.0.1:{}\nTextfileDirectory={}\n", PORT + 1, dir.display()))?;
    lab.multihome_ok(&["reload"])?;
    assert!(scrape(&lab, true)?.1.ends_with("# EOF\n"), "the listener moved or stopped at a reload");
    assert!(daemon_log(&lab).contains("[Metrics] changed: the metrics keep the settings the daemon started with"), "{}", daemon_log(&lab));
    assert_eq!(
        value(&back, &series("multihome_uplink_transitions_total", "wlan1")),
        Some(value(&body, &series("multihome_uplink_transitions_total", "wlan1")).unwrap())
    );
    Ok(())
}

/// `GET path` of the Prometheus server inside the lab host: the body.
fn prometheus_get(lab: &Lab, path: &str) -> anyhow::Result<String> {
    Ok(http_get(lab, PROMETHEUS_PORT, path, "")?.1)
}

/// The value Prometheus has now for an instant `query` (one series), if any.
fn prometheus_value(lab: &Lab, query: &str) -> Option<f64> {
    let encoded: String = query.bytes().map(|b| if b.is_ascii_alphanumeric() || b == b'_' { (b as char).to_string() } else { format!("%{b:02X}") }).collect();
    let body = prometheus_get(lab, &format!("/api/v1/query?query={encoded}")).ok()?;
    // A chunked answer: the JSON is the line that starts with `{`.
    let json = body.lines().find(|l| l.starts_with('{'))?;
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

const PROMETHEUS_PORT: u16 = 9090;

/// The "done when": the real Prometheus (Debian's package), run inside the lab host
/// with a configuration and storage of the test's own, scrapes the daemon every second (in
/// OpenMetrics, which it asks for) and sees eth0 go down and come back, one scrape after the
/// daemon.
#[test]
fn a_real_prometheus_sees_eth0_go_down_and_come_back() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    if !require_tool("prometheus", "what a real Prometheus sees") {
        return Ok(());
    }
    let mut lab = Lab::start(LabOptions { policy: Some(SEED.to_string()), ..LabOptions::new(Manager::Networkd, binary()) })?;
    lab.write_policy(&format!("{SEED}\n[Metrics]\nListen=127.0.0.1:{PORT}\n"))?;
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;
    lab.spawn_multihome(&["daemon"])?;
    let config = lab.dir().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: multihome\n    static_configs:\n      - targets: ['127.0.0.1:{PORT}']\n"
        ),
    )?;
    let storage = lab.dir().join("prometheus-data");
    let args = [
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", storage.display()),
        format!("--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"),
    ];
    lab.spawn_in_host("prometheus", &args.iter().map(String::as_str).collect::<Vec<_>>())?;
    let eth0_up = "multihome_uplink_up{uplink=\"eth0\",family=\"ipv4\"}";
    let transitions = "multihome_uplink_transitions_total{uplink=\"eth0\",family=\"ipv4\"}";
    let logs = |lab: &Lab| format!("{}\nprometheus:\n{}", daemon_log(lab), lab.log("spawned-1.log"));
    lab.wait_for(Duration::from_secs(20), || prometheus_value(&lab, eth0_up) == Some(1.0))
        .map_err(|e| anyhow::anyhow!("Prometheus never saw eth0 up: {e}\n{}", logs(&lab)))?;
    let target = prometheus_get(&lab, "/api/v1/targets")?;
    assert!(target.contains("\"health\":\"up\""), "{target}");
    let before = prometheus_value(&lab, transitions).expect("the transitions counter");

    lab.set_upstream("eth0", false)?;
    let t0 = std::time::Instant::now();
    lab.wait_for(Duration::from_secs(5), || prometheus_value(&lab, eth0_up) == Some(0.0))
        .map_err(|e| anyhow::anyhow!("Prometheus did not see eth0 down: {e}\n{}", logs(&lab)))?;
    eprintln!("Prometheus saw eth0 down {:?} after the fault", t0.elapsed());
    let increase = prometheus_value(&lab, transitions).unwrap() - before;
    assert!(increase >= 1.0, "no transition counted");
    assert_eq!(prometheus_value(&lab, "multihome_uplink_active{uplink=\"wlan1\",family=\"ipv4\"}"), Some(1.0));

    lab.set_upstream("eth0", true)?;
    lab.wait_for(Duration::from_secs(10), || prometheus_value(&lab, eth0_up) == Some(1.0))
        .map_err(|e| anyhow::anyhow!("Prometheus did not see eth0 back: {e}\n{}", logs(&lab)))?;
    eprintln!("Prometheus saw eth0 back {:?} after the fault", t0.elapsed());
    dashboard_queries_answer(&lab)
}

/// Metrics of `Mode=bond` only: the lab's kernel cannot bond (its scrape has none), so for them
/// the dashboard's queries must succeed but may be empty; tests/metrics_rules.rs checks that
/// docs/metrics.md names them.
const BOND_ONLY: [&str; 2] = ["multihome_bond_active_slave", "multihome_bond_slave_mii"];

/// The PromQL of every panel of the shipped dashboard and of its template variables, with the
/// variables as "All" gives them (`.*`) and Grafana's rate interval as a minute.
fn dashboard_expressions() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/grafana/multihome-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap_or_else(|| panic!("a target without expr in {}", panel["title"])).to_string());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        // label_values(SELECTOR, LABEL): the selector is the PromQL Grafana runs.
        if let Some(q) = variable["query"]["query"].as_str().and_then(|q| q.strip_prefix("label_values(")) {
            exprs.push(q.rsplit_once(',').unwrap().0.to_string());
        }
    }
    assert!(exprs.len() >= 15, "the dashboard lost its queries: {exprs:?}");
    exprs.iter().map(|e| e.replace("$instance", ".*").replace("$uplink", ".*").replace("$family", ".*").replace("$__rate_interval", "1m")).collect()
}

/// The metric names an expression mentions (`multihome_...`).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("multihome_") {
        let name: String = rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        rest = &rest[at + name.len()..];
        names.push(name);
    }
    names
}

/// The sample names of a scrape in the classic format.
fn sample_names(text: &str) -> std::collections::BTreeSet<String> {
    text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).filter_map(|l| l.split(['{', ' ']).next()).map(str::to_string).collect()
}

/// A body sent with `Transfer-Encoding: chunked`, joined.
fn unchunk(head: &str, body: &str) -> String {
    if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return body.to_string();
    }
    let (mut out, mut rest) = (String::new(), body);
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Every query of the dashboard, run by the real Prometheus that scraped the lab's daemon: it
/// succeeds, each metric it names is in the daemon's exposition (a panel naming a metric that does
/// not exist fails here), and it has data when its metrics do.
fn dashboard_queries_answer(lab: &Lab) -> anyhow::Result<()> {
    let exposed = sample_names(&scrape(lab, false)?.1);
    for expr in dashboard_expressions() {
        let names = metric_names(&expr);
        assert!(!names.is_empty(), "{expr:?} names no multihome metric");
        for name in &names {
            assert!(
                exposed.contains(name) || BOND_ONLY.contains(&name.as_str()),
                "the dashboard's query {expr:?} names {name}, which the daemon does not expose; it exposes:\n{exposed:#?}"
            );
        }
        let encoded: String =
            expr.bytes().map(|b| if b.is_ascii_alphanumeric() || b == b'_' { (b as char).to_string() } else { format!("%{b:02X}") }).collect();
        let (head, body) = http_get(lab, PROMETHEUS_PORT, &format!("/api/v1/query?query={encoded}"), "")?;
        let answer: serde_json::Value = serde_json::from_str(&unchunk(&head, &body)).map_err(|e| anyhow::anyhow!("{expr:?}: {e}\n{head}\n{body}"))?;
        assert_eq!(answer["status"], "success", "Prometheus refused the dashboard's query {expr:?}: {answer}");
        let series = answer["data"]["result"].as_array().map_or(0, Vec::len);
        if names.iter().all(|n| exposed.contains(n)) {
            assert!(series > 0, "the dashboard's query {expr:?} has no data although its metrics are scraped: {answer}");
        }
        eprintln!("dashboard: {series} series for {expr}");
    }
    Ok(())
}
