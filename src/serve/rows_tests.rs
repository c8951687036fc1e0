//! Unit tests of `serve::rows`: key texts to key columns, and the extra keys of a round.

use super::*;
use crate::store::EpochKey;

use crate::model::{KindCounts, MismatchKind};
use crate::rowdiff::sampler::{SampleResult, SampledDiff};
use crate::store::test_db::with_store;
use serde_json::json;

fn round_with(diffs: Vec<SampledDiff>) -> SampleResult {
    SampleResult {
        rows_sampled: 10,
        extra_keys_checked: 0,
        extra_keys_invalid: 0,
        rows: KindCounts::default(),
        columns: Vec::new(),
        extra_rows: KindCounts::default(),
        in_flight: 0,
        diff_ratio: 0.0,
        diff_ratio_upper_95: 0.0,
        diffs,
        window: (0, 1),
        duration_ms: 1,
    }
}

/// A difference the uniform window found is checked again in the next rounds, before any
/// other extra key, until a round no longer finds it.
#[tokio::test]
async fn the_previous_rounds_differences_are_checked_again_first() {
    with_store(&["orders"], |store| async move {
        let targets: TargetsConfig = toml::from_str(
            r#"
            baseline  = { url_env = "PG_B", table = "public.orders" }
            candidate = { url_env = "PG_C", table = "shadow.orders" }
            key_columns = ["id"]
            "#,
        )
        .unwrap();
        let id = store.service_id("orders").unwrap();
        let (keys, _) = extra_keys(&store, EpochKey::first(id), &targets)
            .await
            .unwrap();
        assert!(keys.is_empty(), "nothing found yet: {keys:?}");

        let found = |key: Value| SampledDiff {
            key: key.as_object().cloned().unwrap(),
            kind: MismatchKind::Mismatched,
            columns: vec!["amount".into()],
            uniform: true,
        };
        rows::record_round(&store.pool, id, &round_with(vec![found(json!({"id": 7}))]))
            .await
            .unwrap();
        let (keys, _) = extra_keys(&store, EpochKey::first(id), &targets)
            .await
            .unwrap();
        assert_eq!(keys, [kv(json!({"id": 7})).unwrap()]);

        // A round that no longer finds it (fixed) stops carrying it.
        rows::record_round(&store.pool, id, &round_with(Vec::new()))
            .await
            .unwrap();
        let (keys, _) = extra_keys(&store, EpochKey::first(id), &targets)
            .await
            .unwrap();
        assert!(keys.is_empty(), "{keys:?}");
    })
    .await;
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn kv(v: Value) -> Option<KeyValues> {
    v.as_object().cloned()
}

#[test]
fn key_texts_map_to_key_columns() {
    let id = cols(&["id"]);
    assert_eq!(key_values("{\"id\":5}", &id), kv(json!({"id": 5})));
    assert_eq!(
        key_values("{\"schema\":{},\"payload\":{\"id\":5}}", &id),
        kv(json!({"id": 5}))
    );
    assert_eq!(key_values("[5]", &id), kv(json!({"id": 5})));
    // Single column: the raw text (numbers keep their spelling), JSON strings unquoted.
    assert_eq!(key_values("42", &id), kv(json!({"id": "42"})));
    assert_eq!(key_values("1.50", &id), kv(json!({"id": "1.50"})));
    assert_eq!(key_values("A-7", &id), kv(json!({"id": "A-7"})));
    assert_eq!(key_values("\"A-7\"", &id), kv(json!({"id": "A-7"})));
    assert_eq!(key_values("{\"other\":1}", &id), None);

    let composite = cols(&["tenant", "id"]);
    assert_eq!(
        key_values("[\"eu\",7]", &composite),
        kv(json!({"tenant": "eu", "id": 7}))
    );
    assert_eq!(
        key_values("{\"id\":7,\"tenant\":\"eu\"}", &composite),
        kv(json!({"tenant": "eu", "id": 7}))
    );
    assert_eq!(key_values("[\"eu\"]", &composite), None);
    assert_eq!(key_values("eu:7", &composite), None);
}
