//! The dashboard as a browser gets it: charts with data, and no event string unescaped.

mod common;

use common::*;
use serde_json::json;
use tally_collector::fixtures::{batch, session, wire};

#[tokio::test]
async fn the_dashboard_shows_charts_with_data_and_escapes_event_strings() {
    let c = running().await;
    let evil = "<script>document.title='pwned'</script>";
    c.post(&batch(with_ids(
        session("vscode", 1, 3, aligned_start_s()),
        "v",
    )))
    .await;
    let (status, _) = c
        .post(&batch(vec![wire(
            "codex_hook_run",
            json!({"product_client_id": evil, "hook_source": evil, "status": "failed"}),
        )]))
        .await;
    assert_eq!(status, 200);

    let response = c.http.get(c.url("/?since=24h")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(
        !html.contains("<script"),
        "unescaped script in the dashboard"
    );
    assert!(html.contains("&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"));
    assert!(html.contains("id=\"turns-over-time\""));
    assert!(
        html.contains("data-value=\"3\""),
        "the 3 turns show as a bar"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external resource"
    );

    // Filtering by client through the form's query string.
    let html = c.get_text("/?since=24h&client=vscode").await;
    assert!(html.contains("<option value=\"vscode\" selected>"));
    let response = c.http.get(c.url("/?since=nonsense")).send().await.unwrap();
    assert_eq!(response.status(), 400);
    c.handle.shutdown().await.unwrap();
}
