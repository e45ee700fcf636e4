//! The event types of contract section 4 and what each one means for routing and rights.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::vocab::Role;

/// The three kinds of aggregate; each event is about exactly one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateKind {
    Request,
    Mandate,
    Roundtable,
}

impl AggregateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateKind::Request => "request",
            AggregateKind::Mandate => "mandate",
            AggregateKind::Roundtable => "roundtable",
        }
    }

    /// The name of the field in `data` that carries the aggregate's id.
    pub fn id_field(self) -> &'static str {
        match self {
            AggregateKind::Request => "request_id",
            AggregateKind::Mandate => "mandate_id",
            AggregateKind::Roundtable => "roundtable_id",
        }
    }
}

impl fmt::Display for AggregateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! event_types {
    ($($variant:ident => $text:literal, $kind:ident, $publisher:expr, $creates:literal;)+) => {
        /// Every event type of the contract.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum EventType {
            $(#[serde(rename = $text)] $variant),+
        }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),+];

            /// The CloudEvents `type`, e.g. `tafel.request.submitted`.
            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(EventType::$variant),)+ _ => None }
            }

            /// The kind of aggregate this event is about.
            pub fn aggregate(self) -> AggregateKind {
                match self { $(EventType::$variant => AggregateKind::$kind),+ }
            }

            /// The role that may publish this type; `None` for events only Tafel emits.
            pub fn publisher(self) -> Option<Role> {
                match self { $(EventType::$variant => $publisher),+ }
            }

            /// Whether this event creates its aggregate (and so needs it not to exist).
            pub fn creates_aggregate(self) -> bool {
                match self { $(EventType::$variant => $creates),+ }
            }
        }
    };
}

event_types! {
    RequestSubmitted => "tafel.request.submitted", Request, Some(Role::Entrepreneur), true;
    RequestRevised => "tafel.request.revised", Request, Some(Role::Entrepreneur), false;
    RequestCoached => "tafel.request.coached", Request, Some(Role::Coach), false;
    RequestWithdrawn => "tafel.request.withdrawn", Request, Some(Role::Entrepreneur), false;
    MandatePublished => "tafel.mandate.published", Mandate, Some(Role::Financier), true;
    MandateRevised => "tafel.mandate.revised", Mandate, Some(Role::Financier), false;
    MandateClosed => "tafel.mandate.closed", Mandate, Some(Role::Financier), false;
    RoundtableScheduled => "tafel.roundtable.scheduled", Roundtable, Some(Role::Organiser), true;
    RoundtableAgendaSet => "tafel.roundtable.agenda_set", Roundtable, Some(Role::Organiser), false;
    RoundtableAssessed => "tafel.roundtable.assessed", Roundtable, Some(Role::Financier), false;
    RoundtableRecused => "tafel.roundtable.recused", Roundtable, Some(Role::Financier), false;
    RoundtableConcluded => "tafel.roundtable.concluded", Roundtable, Some(Role::Organiser), false;
    ShortlistUpdated => "tafel.shortlist.updated", Request, None, false;
}

impl EventType {
    /// `<aggregate>.<event>`: the type without its leading `tafel.`, as it appears in
    /// the NATS subjects `tafel.submit.<aggregate>.<event>.<principal>`.
    pub fn subject_tokens(self) -> &'static str {
        &self.as_str()["tafel.".len()..]
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_carry_their_aggregate() {
        for event_type in EventType::ALL {
            let tokens: Vec<&str> = event_type.subject_tokens().split('.').collect();
            assert_eq!(tokens.len(), 2, "{event_type}");
            if *event_type != EventType::ShortlistUpdated {
                assert_eq!(tokens[0], event_type.aggregate().as_str());
            }
            assert_eq!(EventType::parse(event_type.as_str()), Some(*event_type));
        }
    }
}
