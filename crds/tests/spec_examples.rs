//! The Worker-API spec's own example requests parse and validate, defaults are the documented ones, and the
//! result envelope serialises in the spec's shape.

use secretflow_crds::request::Field;
use secretflow_crds::tasks::psi::PsiProtocol;
use secretflow_crds::{ClusterMode, ExecutionResult, PerformanceMetrics, TaskConfig, WorkerRequest};
use serde_json::json;

fn psi_config() -> serde_json::Value {
    json!({
        "task_type": "psi",
        "keys": {"alice": ["uid"], "bob": ["uid"]},
        "input_paths": {"alice": "/app/data/alice.csv", "bob": "/app/data/bob.csv"},
        "output_paths": {"alice": "/app/data/alice_psi_out.csv", "bob": "/app/data/bob_psi_out.csv"},
        "receiver": "alice",
        "protocol": "KKRT_PSI_2PC",
        "sort": true
    })
}

fn spu(alice: &str, bob: &str) -> serde_json::Value {
    json!({"cluster_def": {"nodes": [{"party": "alice", "address": alice}, {"party": "bob", "address": bob}],
        "runtime_config": {"protocol": "SEMI2K", "field": "FM128"}}})
}

#[test]
fn spec_example_1_local_mode() {
    let req = json!({
        "task_id": "dag-12345-abcde", "subtask_id": "node-67890-fghij", "execution_id": "exec-11111-klmno",
        "sf_init_config": {"parties": ["alice", "bob"], "address": "local"},
        "spu_config": spu("127.0.0.1:12345", "127.0.0.1:12346"),
        "task_config": psi_config(),
    });
    let valid = WorkerRequest::from_json(&req).unwrap().validate().unwrap();
    assert_eq!(valid.mode, ClusterMode::Local);
    assert_eq!(valid.parties, vec!["alice", "bob"]);
    let spu = valid.spu.unwrap();
    assert_eq!((spu.field, spu.fraction_bits), (Field::FM128, 26));
    let TaskConfig::Psi(psi) = valid.task else { panic!("psi") };
    assert_eq!(psi.protocol, PsiProtocol::KKRT_PSI_2PC);
    assert!(psi.sort && psi.broadcast_result);
}

#[test]
fn spec_example_2_cluster_mode_both_nodes() {
    for (me, alice, bob) in
        [("alice", "127.0.0.1:7700", "192.168.1.100:7800"), ("bob", "192.168.1.50:7700", "127.0.0.1:7800")]
    {
        let req = json!({
            "task_id": "dag-alice-001", "subtask_id": "psi-node-alice", "execution_id": "exec-alice-001-001",
            "sf_init_config": {
                "parties": {"alice": {"address": alice, "listen_addr": "0.0.0.0:7700"},
                            "bob": {"address": bob, "listen_addr": "0.0.0.0:7800"}},
                "self_party": me, "address": "127.0.0.1:7701"},
            "spu_config": spu("127.0.0.1:12345", "192.168.1.100:12346"),
            "task_config": psi_config(),
        });
        let raw = WorkerRequest::from_json(&req).unwrap();
        let valid = raw.validate().unwrap();
        let ClusterMode::Cluster { self_party, endpoints } = valid.mode else { panic!("cluster mode") };
        assert_eq!(self_party.as_deref(), Some(me));
        assert_eq!(endpoints[0].address, alice);
        assert_eq!(endpoints[1].listen_addr, "0.0.0.0:7800");
        // The raw form round-trips (the bridge and the operator re-emit requests).
        assert_eq!(serde_json::to_value(&raw).unwrap(), req);
    }
}

#[test]
fn ray_mode_is_accepted() {
    let req = json!({
        "task_id": "t", "subtask_id": "s", "execution_id": "e",
        "sf_init_config": {"parties": ["alice", "bob"], "address": "ray://127.0.0.1:10001", "num_cpus": 8,
                           "log_to_driver": true, "omp_num_threads": 1},
        "task_config": {"task_type": "table_statistics", "input_data": {"alice": "/a.csv"}, "output_report": "/r.json"},
    });
    let valid = WorkerRequest::from_json(&req).unwrap().validate().unwrap();
    assert!(matches!(valid.mode, ClusterMode::Ray { num_cpus: Some(8), omp_num_threads: Some(1), .. }));
}

#[test]
fn documented_defaults() {
    let cfg = TaskConfig::from_json(&json!({"task_type": "ss_lr", "train_data": {"alice": "/a"}, "features": ["x"],
        "label": "y", "label_party": "alice", "model_output": {"alice": "/m"}}))
    .unwrap();
    let TaskConfig::SsLr(lr) = cfg else { panic!() };
    assert_eq!((lr.params.epochs, lr.params.batch_size, lr.params.learning_rate), (10, 128, 0.1));
    let cfg = TaskConfig::from_json(&json!({"task_type": "biclassification_eval", "prediction_data": {"alice": "/p"},
        "label_column": "y", "prediction_column": "p", "output_report": "/r"}))
    .unwrap();
    let TaskConfig::BiclassificationEval(b) = cfg else { panic!() };
    assert_eq!(b.bucket_size, 10);
    // to_json gives back an equivalent task_config.
    assert_eq!(
        TaskConfig::from_json(&TaskConfig::BiclassificationEval(b.clone()).to_json()).unwrap(),
        TaskConfig::BiclassificationEval(b)
    );
}

#[test]
fn result_envelope_has_the_spec_shape() {
    let metrics = PerformanceMetrics::new(5.4, 0.11, 7.88, 13.4, Default::default());
    assert_eq!(metrics.cluster_init_percentage, 40.3);
    assert_eq!(metrics.algorithm_exec_percentage, 58.8);
    assert!((metrics.overhead_time - 0.01).abs() < 1e-9);
    let failure = ExecutionResult::failure(secretflow_crds::ErrorInfo::new(
        secretflow_crds::ErrorType::ValueError,
        "缺少必需字段: keys",
    ));
    let v = serde_json::to_value(&failure).unwrap();
    assert_eq!(v["status"], "failure");
    assert_eq!(v["error"]["type"], "ValueError");
    assert_eq!(v["error"]["message"], "缺少必需字段: keys");
    assert!(v.get("result").is_none());
}
