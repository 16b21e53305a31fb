//! Opaque identifiers. Each kind of record has its own type so that a
//! partner id can never be passed where a plan id is expected. The text is
//! a kind prefix plus a ULID (`prt_01J…`): ordered by creation time, which
//! makes it a stable cursor for pagination. Ids are made by the app layer
//! (randomness is I/O); the domain only carries them.

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident, $prefix:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// Wraps an id read from storage or from a URL path.
            pub fn from_string(s: impl Into<String>) -> Self {
                Self(s.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

pub(crate) use id_type;

id_type!(
    /// A workspace: one vendor's partner program.
    WorkspaceId, "wks"
);
id_type!(PartnerId, "prt");
id_type!(ContactId, "pct");
id_type!(AccountId, "acc");
id_type!(DealId, "del");
id_type!(PlanId, "pln");
id_type!(ApiKeyId, "key");
id_type!(AuditId, "aud");
