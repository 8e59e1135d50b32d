//! The gRPC link's tests: limits, flushes, streams, sessions and replays, between links on loopback.

use super::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_or(0, |a| a.port())
}

async fn link(me: &str, session: &str, ports: (u16, u16)) -> GrpcLink {
    limited(me, session, ports, Limits::default()).await
}

async fn limited(me: &str, session: &str, ports: (u16, u16), limits: Limits) -> GrpcLink {
    let (mine, peer, theirs) = if me == "alice" { (ports.0, "bob", ports.1) } else { (ports.1, "alice", ports.0) };
    let cfg = GrpcConfig {
        party: me.into(),
        session: session.into(),
        listen: format!("127.0.0.1:{mine}"),
        peers: vec![(peer.into(), format!("127.0.0.1:{theirs}"))],
        timeout: Duration::from_secs(5),
        tls: None,
        limits,
    };
    GrpcLink::start(cfg).await.expect("link starts")
}

/// An oversized message and a backlog past the limit each stop the sender: bob's receives from alice fail
/// at once naming her and the limit, and bob holds no more than the limit meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_past_the_limits_fails_the_receiver_naming_it() {
    let limits = Limits { message: CHUNK + 100, buffered: 3 * CHUNK };
    let ports = (free_port(), free_port());
    let (a, b) = tokio::join!(limited("alice", "s", ports, Limits::default()), limited("bob", "s", ports, limits));
    a.send("bob", "fits", vec![7; CHUNK]).await.expect("a message within the limit");
    assert_eq!(b.recv("alice", "fits").await.expect("delivered").len(), CHUNK);
    // Two chunks of one message: the second passes the message limit, and bob refuses it.
    a.send("bob", "huge", vec![1; 2 * CHUNK]).await.expect("queued");
    let flushed = a.flush("bob").await;
    let started = std::time::Instant::now();
    let err = b.recv("alice", "huge").await.expect_err("refused");
    assert!(started.elapsed() < Duration::from_secs(2), "no wait for the timeout");
    let text = err.to_string();
    assert!(text.contains("alice") && text.contains("limits") && text.contains("allowed"), "{text}");
    assert!(flushed.is_err(), "alice learns of the refusal");
    // Every later receive from alice fails the same way.
    assert!(b.recv("alice", "fits").await.expect_err("stopped").to_string().contains("limits"));

    // A backlog: messages within the size limit that bob does not read, past what he may hold.
    let ports = (free_port(), free_port());
    let (a, b) = tokio::join!(limited("alice", "s", ports, Limits::default()), limited("bob", "s", ports, limits));
    for i in 0..4 {
        a.send("bob", &format!("m{i}"), vec![2; CHUNK]).await.expect("queued");
    }
    assert!(a.flush("bob").await.is_err(), "the fourth is refused");
    let err = b.recv("alice", "m0").await.expect_err("stopped");
    assert!(err.to_string().contains("held unread"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_arrive_whole_on_the_stream_concurrent_and_multi_chunk() {
    let ports = (free_port(), free_port());
    let (a, b) = tokio::join!(link("alice", "s", ports), link("bob", "s", ports));
    let big: Vec<u8> = (0..2 * CHUNK + 12_345).map(|i| (i * 7 % 251) as u8).collect();
    // Two sends to one peer at once (as the RLWE products do): their chunks share the stream.
    let (x, y) = tokio::join!(a.send("bob", "big", big.clone()), a.send("bob", "small", vec![1, 2, 3]));
    x.expect("big message sent");
    y.expect("small message sent");
    a.send("bob", "small", vec![4]).await.expect("second small message sent");
    assert_eq!(b.recv("alice", "big").await.expect("big message"), big);
    assert_eq!(b.recv("alice", "small").await.expect("small message"), vec![1, 2, 3]);
    assert_eq!(b.recv("alice", "small").await.expect("small message"), vec![4]);
    b.send("alice", "reply", Vec::new()).await.expect("empty reply sent");
    assert_eq!(a.recv("bob", "reply").await.expect("reply"), Vec::<u8>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_message_is_already_at_the_peer() {
    let ports = (free_port(), free_port());
    let (a, b) = tokio::join!(link("alice", "s", ports), link("bob", "s", ports));
    let big: Vec<u8> = (0..CHUNK + 999).map(|i| (i * 13 % 251) as u8).collect();
    // Sends return before delivery; the flush waits until bob holds both, so alice may then go away.
    a.send("bob", "big", big.clone()).await.expect("queued");
    a.send("bob", "last", vec![9]).await.expect("queued");
    a.flush("bob").await.expect("bob acknowledged every chunk");
    drop(a);
    // Both are already queued at bob: a receive that may not wait at all gets them.
    let now = |tag| tokio::time::timeout(Duration::ZERO, b.recv("alice", tag));
    assert_eq!(now("big").await.expect("queued before the flush returned").expect("big message"), big);
    assert_eq!(now("last").await.expect("queued before the flush returned").expect("last message"), vec![9]);
    // Nothing sent, nothing to wait for.
    b.flush("alice").await.expect("no stream to alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_running_another_session_is_refused_with_the_reason() {
    let ports = (free_port(), free_port());
    let (a, _b) = tokio::join!(link("alice", "task-1", ports), link("bob", "task-2", ports));
    let err = a.send("bob", "hello", vec![1]).await.expect_err("another session's chunk is refused");
    let text = err.to_string();
    assert!(text.contains("bob") && text.contains("different tasks"), "{text}");
}

/// A recording of one run (alice's hello and a chunk) replayed into the next run of the same task: bob's
/// fresh nonce makes the recorded session another run's, and the chunk is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_replayed_from_an_earlier_run_is_refused() {
    let ports = (free_port(), free_port());
    let (a, b) = tokio::join!(link("alice", "task", ports), link("bob", "task", ports));
    a.send("bob", "m", vec![1, 2, 3]).await.expect("sent");
    assert_eq!(b.recv("alice", "m").await.expect("received"), vec![1, 2, 3]);
    let recorded = a.chunk("bob", "m", vec![1, 2, 3], true, false);
    let hello = pb::Hello { session: "task".into(), from: "alice".into(), nonce: a.runs.nonce() };
    drop(b);
    // The next run: bob again, and the recording replayed to him.
    let port = free_port();
    let bob = link("bob", "task", (free_port(), port)).await;
    let channel = Endpoint::from_shared(format!("http://127.0.0.1:{port}")).expect("endpoint").connect().await;
    let mut client = PartyLinkClient::new(channel.expect("connects"));
    let _watch = client.watch(hello).await.expect("a replayed hello is only a hello");
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(recorded).await.expect("queued");
    drop(tx);
    let mut acks = client.messages(tokio_stream::wrappers::ReceiverStream::new(rx)).await.expect("stream").into_inner();
    let refused = acks.message().await.expect_err("the replayed chunk is refused");
    assert!(refused.message().contains("another run"), "{}", refused.message());
    let err = tokio::time::timeout(Duration::from_secs(1), bob.recv("alice", "m")).await;
    assert!(!matches!(err, Ok(Ok(_))), "nothing was delivered");
}
