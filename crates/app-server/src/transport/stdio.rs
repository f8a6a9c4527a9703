//! The stdio transport: NDJSON on stdin/stdout, one connection for the process's life.

use crate::connection::OutboundPolicy;
use crate::processor::{ConnectionSession, MessageProcessor};
use crate::transport::{BoundedLines, Line, MAX_MESSAGE_BYTES};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Outbound frames queued for stdout; the writer waits when full (stdio clients are never dropped).
const STDIO_OUTBOUND_CAPACITY: usize = 1024;
/// How long pending output may take to flush after stdin closes.
const FLUSH_DEADLINE: Duration = Duration::from_secs(2);

/// Serves one connection over a reader and writer until the reader hits EOF.
pub(crate) async fn serve_lines<R, W>(processor: Arc<MessageProcessor>, reader: R, writer: W)
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel(STDIO_OUTBOUND_CAPACITY);
    let (id, closed) = processor
        .outgoing
        .registry()
        .register(tx, OutboundPolicy::Wait);
    let writer_task = tokio::spawn(write_lines(rx, writer));
    let mut conn = ConnectionSession::new(id, tally_analytics::RpcTransport::Stdio);
    let mut lines = BoundedLines::new(reader, MAX_MESSAGE_BYTES);
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line,
            _ = closed.cancelled() => break,
        };
        match line {
            Ok(Line::Text(text)) if text.trim().is_empty() => {}
            Ok(Line::Text(text)) => processor.process_text(&mut conn, &text).await,
            Ok(Line::TooLong) => processor.refuse_oversized(&conn, MAX_MESSAGE_BYTES).await,
            Ok(Line::Eof) => break,
            Err(e) => {
                tracing::warn!(error = %e, "stdin read failed; closing");
                break;
            }
        }
    }
    processor.connection_closed(id);
    if tokio::time::timeout(FLUSH_DEADLINE, writer_task)
        .await
        .is_err()
    {
        tracing::warn!("stdout did not drain before the deadline");
    }
}

async fn write_lines<W: AsyncWrite + Unpin>(mut rx: mpsc::Receiver<Arc<str>>, mut writer: W) {
    while let Some(frame) = rx.recv().await {
        let ok = async {
            writer.write_all(frame.as_bytes()).await?;
            writer.write_all(b"\n").await?;
            writer.flush().await
        }
        .await;
        if let Err(e) = ok {
            tracing::warn!(error = %e, "stdout write failed; dropping output");
            return;
        }
    }
}

/// Serves the process's stdin and stdout.
pub(crate) async fn serve_stdio(processor: Arc<MessageProcessor>) {
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    serve_lines(processor, stdin, tokio::io::stdout()).await;
}
