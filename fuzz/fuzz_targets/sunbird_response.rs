//! Arbitrary status codes and bodies through the Sunbird adapter's reading of an update's
//! answer: nothing is acknowledged that the body does not acknowledge (a 2xx, a JSON `result`
//! with "SUCCESS" under the content id, the batch in neither rejection list).
#![no_main]

use headway::{ContentItem, ContentKey, ContentState, ItemOutcome, Outgoing, Progress, Status};
use headway_sunbird::wire::{interpret_update, UpdateAnswer};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(init: headway_fuzz::quiet_caught_panics(), |input: &[u8]| {
    headway_fuzz::abort_on_escaping_panic(|| {
        let Some((head, body)) = input.split_first_chunk::<2>() else {
            return;
        };
        let status = 100 + u16::from_be_bytes(*head) % 500;
        let items: Vec<Outgoing> = (0..3)
            .map(|i| Outgoing {
                item: ContentItem::new(
                    ContentKey::new("u", "c", format!("b{}", i % 2), format!("do_{i}"))
                        .expect("key"),
                    ContentState::new(Status::Completed, Progress::COMPLETE, None, None),
                ),
                server: None,
            })
            .collect();
        let refs: Vec<&Outgoing> = items.iter().collect();
        if let UpdateAnswer::Items(outcomes) = interpret_update(status, body, &refs) {
            assert_eq!(outcomes.len(), items.len());
            for out in &items {
                let outcome = &outcomes[out.item.key()];
                if outcome.is_acknowledged() {
                    assert!((200..300).contains(&status));
                    let json: Value =
                        serde_json::from_slice(body).expect("an acknowledging body is JSON");
                    let result = &json["result"];
                    assert_eq!(result[out.item.key().content().as_str()], "SUCCESS");
                    for list in ["NOT_A_ON_GOING_BATCH", "BATCH_NOT_EXISTS"] {
                        let listed = result[list]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|b| b == out.item.key().batch().as_str());
                        assert!(!listed);
                    }
                }
                if let ItemOutcome::HeldLower { .. } = outcome {
                    unreachable!("completed items are never held lower");
                }
            }
        }
    });
});
