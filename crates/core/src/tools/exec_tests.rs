use super::*;

fn bash(script: &str, timeout: Duration, cap: usize) -> ExecRequest {
    ExecRequest {
        argv: vec!["/bin/bash".into(), "-c".into(), script.into()],
        cwd: std::env::temp_dir(),
        timeout,
        output_cap: cap,
        sandbox: None,
    }
}

async fn run_collecting(req: ExecRequest) -> (ExecResult, String) {
    let (tx, mut rx) = mpsc::channel(1024);
    let result = run(req, tx).await.expect("runs");
    let mut streamed = String::new();
    while let Ok(d) = rx.try_recv() {
        streamed.push_str(&d);
    }
    (result, streamed)
}

#[tokio::test]
async fn output_of_stdout_and_stderr_is_streamed_and_aggregated_with_the_exit_code() {
    let (r, streamed) = run_collecting(bash(
        "echo out; echo err >&2; exit 3",
        Duration::from_secs(10),
        OUTPUT_CAP,
    ))
    .await;
    assert_eq!(r.exit_code, 3);
    assert!(!r.timed_out);
    assert!(
        r.output.contains("out\n") && r.output.contains("err\n"),
        "{r:?}"
    );
    assert_eq!(streamed.len(), r.output.len());
}

#[tokio::test]
async fn a_hanging_command_is_killed_at_its_timeout_with_its_children() {
    let started = Instant::now();
    let (r, _) = run_collecting(bash(
        "echo started; sleep 30 & sleep 30",
        Duration::from_millis(300),
        OUTPUT_CAP,
    ))
    .await;
    assert!(r.timed_out);
    assert_eq!(r.exit_code, TIMEOUT_EXIT_CODE);
    assert!(r.output.starts_with("started\n"), "{}", r.output);
    assert!(r.output.contains("timed out after 300 ms"), "{}", r.output);
    // The background `sleep` held the pipe; killing the group released it well before 30 s.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_chatty_command_keeps_only_head_and_tail() {
    let (r, streamed) = run_collecting(bash("seq 1 100000", Duration::from_secs(20), 1024)).await;
    assert_eq!(r.exit_code, 0);
    assert!(r.output.starts_with("1\n2\n3\n"), "{}", &r.output[..20]);
    assert!(r.output.ends_with("99999\n100000\n"));
    assert!(r.output.contains("bytes omitted"));
    assert!(r.output.len() < 1200, "{}", r.output.len());
    assert!(streamed.len() <= 512, "only the head is streamed");
}

#[tokio::test]
async fn a_missing_program_is_an_error_not_a_panic() {
    let mut req = bash("", Duration::from_secs(1), 64);
    req.argv = vec!["/nonexistent/tally-test-binary".into()];
    let (tx, _rx) = mpsc::channel(1);
    assert!(run(req, tx).await.is_err());
}

#[tokio::test]
async fn a_character_written_in_two_halves_streams_whole() {
    // "日" is E6 97 A5; the pause makes the two writes arrive as separate pipe reads.
    let (r, streamed) = run_collecting(bash(
        r"printf '\xe6'; sleep 0.2; printf '\x97\xa5 ok\n'",
        Duration::from_secs(10),
        OUTPUT_CAP,
    ))
    .await;
    assert_eq!(r.exit_code, 0);
    assert_eq!(streamed, "日 ok\n");
    assert_eq!(r.output, "日 ok\n");
}
