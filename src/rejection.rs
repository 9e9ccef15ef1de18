//! Why a server refused a content state: a kind the engine acts on, and the server's own text
//! for the learner's eyes.

use std::fmt;

/// Why the server did not take an item: what kind of refusal it is (which decides when the
/// item is sent again) and the server's own text, kept exactly as it came so an app or the CLI
/// shows what the server said. Adapters map their server's codes to these kinds.
///
/// ```
/// use headway::RejectionReason;
/// let closed = RejectionReason::BatchNotOngoing { text: "the batch ended".into() };
/// assert_eq!(closed.to_string(), "the batch ended");
/// assert!(!closed.is_resent_at_next_sync());
/// let dropped = RejectionReason::DroppedByServer { text: "left out of the answer".into() };
/// assert!(dropped.is_resent_at_next_sync());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionReason {
    /// The item's batch is not running (not started yet, or ended): refused for good, until
    /// the state changes or the app asks to resend (after the batch reopened, say).
    BatchNotOngoing {
        /// What the server said.
        text: String,
    },
    /// The server does not know the item's batch: refused for good.
    BatchUnknown {
        /// What the server said.
        text: String,
    },
    /// Any other refusal for good (a client error naming this item, say).
    RefusedByServer {
        /// What the server said.
        text: String,
    },
    /// The server answered but left the item out without a reason (a server may do so for an
    /// item of another user than the token's). Reported as a rejection, and sent again by the
    /// next sync: the cause (a wrong token, say) may be gone by then, and a refusal that
    /// outlived it would withhold the progress for good.
    DroppedByServer {
        /// What the adapter knows of why.
        text: String,
    },
}

impl RejectionReason {
    /// The server's text, exactly as it came.
    ///
    /// ```
    /// let reason = headway::RejectionReason::BatchUnknown { text: "no such batch".into() };
    /// assert_eq!(reason.text(), "no such batch");
    /// ```
    pub fn text(&self) -> &str {
        match self {
            RejectionReason::BatchNotOngoing { text }
            | RejectionReason::BatchUnknown { text }
            | RejectionReason::RefusedByServer { text }
            | RejectionReason::DroppedByServer { text } => text,
        }
    }

    /// True when the next sync sends the item again by itself ([`DroppedByServer`]); every
    /// other refusal holds until the state changes or the app asks to resend.
    ///
    /// [`DroppedByServer`]: RejectionReason::DroppedByServer
    ///
    /// ```
    /// let reason = headway::RejectionReason::RefusedByServer { text: "bad request".into() };
    /// assert!(!reason.is_resent_at_next_sync());
    /// ```
    pub fn is_resent_at_next_sync(&self) -> bool {
        matches!(self, RejectionReason::DroppedByServer { .. })
    }

    /// The name of the kind, as the store keeps it (before the text in the `rejection` column).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            RejectionReason::BatchNotOngoing { .. } => "batch_not_ongoing",
            RejectionReason::BatchUnknown { .. } => "batch_unknown",
            RejectionReason::RefusedByServer { .. } => "refused",
            RejectionReason::DroppedByServer { .. } => "dropped",
        }
    }

    /// A reason from its stored kind and text; `None` for a kind this build does not know.
    pub(crate) fn from_kind(kind: &str, text: String) -> Option<RejectionReason> {
        Some(match kind {
            "batch_not_ongoing" => RejectionReason::BatchNotOngoing { text },
            "batch_unknown" => RejectionReason::BatchUnknown { text },
            "refused" => RejectionReason::RefusedByServer { text },
            "dropped" => RejectionReason::DroppedByServer { text },
            _ => return None,
        })
    }
}

/// Compares the server's text only, whatever the kind.
impl PartialEq<str> for RejectionReason {
    fn eq(&self, other: &str) -> bool {
        self.text() == other
    }
}

/// Compares the server's text only, whatever the kind.
impl PartialEq<&str> for RejectionReason {
    fn eq(&self, other: &&str) -> bool {
        self.text() == *other
    }
}

/// Shows the server's text only, exactly as it came.
impl fmt::Display for RejectionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_stored_name() {
        let text = || "what the server said".to_string();
        for reason in [
            RejectionReason::BatchNotOngoing { text: text() },
            RejectionReason::BatchUnknown { text: text() },
            RejectionReason::RefusedByServer { text: text() },
            RejectionReason::DroppedByServer { text: text() },
        ] {
            let again = RejectionReason::from_kind(reason.kind(), text());
            assert_eq!(again.as_ref(), Some(&reason));
            assert_eq!(reason.to_string(), text());
        }
        assert_eq!(RejectionReason::from_kind("unheard-of", text()), None);
    }
}
