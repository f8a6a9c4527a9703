//! The dashboard in a real headless Chromium (`apt-get install chromium`, listed in
//! `crates/collector/ci-packages.txt`): the page renders and its charts show data, checked on the
//! pixels of a screenshot. Without Chromium the test says so loudly and passes, except under CI
//! (`CI` set), where it fails. `TALLY_DASHBOARD_SCREENSHOT=path` keeps the screenshot.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tally_collector::fixtures::{batch, helper_thread, session};

fn find_chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| {
            std::env::var("PATH")
                .unwrap_or_default()
                .split(':')
                .map(|dir| PathBuf::from(dir).join(name))
                .collect::<Vec<_>>()
        })
        .find(|p| p.is_file())
}

/// Runs headless Chromium to screenshot `url`, killing it after a deadline.
fn screenshot(chromium: &Path, url: &str, out: &Path) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1280,1700",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", out.display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium exited with {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Pixels of the PNG within 12 of `rgb` on every channel.
fn pixels_of(png_path: &Path, rgb: [u8; 3]) -> usize {
    let decoder = png::Decoder::new(std::fs::File::open(png_path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(
        channels >= 3,
        "unexpected PNG color type {:?}",
        info.color_type
    );
    buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| (0..3).all(|i| p[i].abs_diff(rgb[i]) <= 12))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_renders_charts_with_data_in_chromium() {
    let Some(chromium) = find_chromium() else {
        let message = "\n\n!!!!!!!! chromium NOT FOUND: the dashboard was NOT tested in a browser !!!!!!!!\n\
                       !!!!!!!! install it with: apt-get install chromium                      !!!!!!!!\n";
        eprintln!("{message}");
        println!("{message}");
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is required under CI"
        );
        return;
    };
    let c = running().await;
    let start = aligned_start_s();
    for (client, n) in [("vscode", 1), ("tui", 2), ("jetbrains", 3)] {
        c.post(&batch(with_ids(
            session(client, n, 4 + n, start - 3600 * n as i64),
            client,
        )))
        .await;
    }
    // The TUI's title thread: a helper thread, in "Threads by source" and not a session.
    let title = helper_thread(
        "tui",
        "thr-title",
        "thr-title",
        "thread_title",
        start - 7200,
    );
    c.post(&batch(with_ids(title, "title"))).await;
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("dashboard.png");
    let url = c.url("/?since=24h");
    let out = shot.clone();
    tokio::task::spawn_blocking(move || screenshot(&chromium, &url, &out))
        .await
        .unwrap();
    // Timeline bars are #3b6fd6, horizontal bars #2f9e72 (see svg.rs).
    let timeline = pixels_of(&shot, [0x3b, 0x6f, 0xd6]);
    let breakdown = pixels_of(&shot, [0x2f, 0x9e, 0x72]);
    if let Some(keep) = std::env::var_os("TALLY_DASHBOARD_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    assert!(timeline > 500, "timeline charts drew {timeline} bar pixels");
    assert!(
        breakdown > 500,
        "breakdown charts drew {breakdown} bar pixels"
    );

    // An empty range draws no bars (the pixels above come from data, not decoration).
    let empty = c.url("/?since=24h&client=nobody");
    let out = dir.path().join("empty.png");
    let shot_empty = out.clone();
    let chromium = find_chromium().unwrap();
    tokio::task::spawn_blocking(move || screenshot(&chromium, &empty, &out))
        .await
        .unwrap();
    assert_eq!(pixels_of(&shot_empty, [0x3b, 0x6f, 0xd6]), 0);
    c.handle.shutdown().await.unwrap();
}
