//! `OutgoingMessageSender::send_response` with analytics off and on, for traffic the reducer
//! keeps and for traffic the filter ignores. Run: `cargo bench -p tally-app-server --bench send_response`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;
use tally_analytics::AnalyticsEventsClient;
use tally_app_server::outgoing::OutgoingMessageSender;
use tally_app_server::registry::ConnectionRegistry;
use tally_app_server::OutboundPolicy;
use tally_protocol::types::*;
use tally_protocol::{ClientResponsePayload, RequestId};
use tokio::sync::mpsc;

fn sender(
    analytics: AnalyticsEventsClient,
) -> (
    OutgoingMessageSender,
    tally_app_server::ConnectionId,
    mpsc::Receiver<Arc<str>>,
) {
    let registry = Arc::new(ConnectionRegistry::default());
    let (tx, rx) = mpsc::channel(1 << 16);
    let (id, _closed) = registry.register(tx, OutboundPolicy::Wait);
    (
        OutgoingMessageSender::with_analytics(registry, analytics),
        id,
        rx,
    )
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let steer = ClientResponsePayload::TurnSteer(TurnSteerResponse {
        turn_id: "019a0000-0000-7000-8000-000000000000".into(),
    });
    let models = ClientResponsePayload::ModelList(ModelListResponse {
        data: vec![],
        next_cursor: None,
    });
    let mut group = c.benchmark_group("send_response");
    // Each payload with analytics off and on, so each ratio compares the same serialization:
    // turn/steer is traffic the reducer keeps, model/list traffic the filter ignores.
    let cases: [(&str, bool, &ClientResponsePayload); 4] = [
        ("kept_turn_steer/analytics_off", false, &steer),
        ("kept_turn_steer/analytics_on", true, &steer),
        ("ignored_model_list/analytics_off", false, &models),
        ("ignored_model_list/analytics_on", true, &models),
    ];
    for (name, enabled, payload) in cases {
        let (facts_tx, mut facts_rx) = mpsc::channel(1 << 16);
        let analytics = if enabled {
            AnalyticsEventsClient::new(facts_tx)
        } else {
            AnalyticsEventsClient::disabled()
        };
        let (s, conn, mut frames) = sender(analytics);
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(s.send_response(conn, RequestId::Integer(1), payload.clone()));
                let _ = frames.try_recv();
                let _ = facts_rx.try_recv();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
