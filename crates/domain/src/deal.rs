//! Deals and the native pipeline's stages.

use crate::partner::text_enum;

text_enum!(
    /// Stages of the native pipeline, in order.
    Stage {
        New = "new",
        Qualified = "qualified",
        Meeting = "meeting",
        Proposal = "proposal",
        Negotiation = "negotiation",
        ClosedWon = "closed_won",
        ClosedLost = "closed_lost",
    }
);

impl Stage {
    pub fn is_closed(&self) -> bool {
        matches!(self, Stage::ClosedWon | Stage::ClosedLost)
    }

    /// What a partner reads for this stage unless the workspace says otherwise.
    pub fn default_label(&self) -> &'static str {
        match self {
            Stage::New => "Received by the sales team",
            Stage::Qualified => "Qualified",
            Stage::Meeting => "Meeting held",
            Stage::Proposal => "Proposal sent",
            Stage::Negotiation => "In negotiation",
            Stage::ClosedWon => "Won",
            Stage::ClosedLost => "Closed, not won",
        }
    }
}

/// A partner-friendly stage label: 1–60 characters of text.
pub fn parse_stage_label(field: &str, input: &str) -> Result<String, crate::FieldError> {
    crate::validation::required_text(field, input, 60)
}

text_enum!(
    /// Where a deal came from.
    DealSource { Direct = "direct", Partner = "partner" }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_won_and_lost_are_closed() {
        let closed: Vec<_> = Stage::ALL.iter().filter(|s| s.is_closed()).collect();
        assert_eq!(closed, [&Stage::ClosedWon, &Stage::ClosedLost]);
    }
}

/// A deal of the vendor's pipeline. A direct deal not in a closed stage is
/// an *open direct opportunity*, which conflict checks look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deal {
    pub id: crate::ids::DealId,
    pub name: String,
    pub company_name: String,
    pub company_domain: Option<crate::company::CompanyDomain>,
    pub stage: Stage,
    pub amount: crate::Money,
    pub source: DealSource,
    pub owner_email: Option<crate::Email>,
    pub created_at: jiff::Timestamp,
    pub closed_at: Option<jiff::Timestamp>,
    pub updated_at: jiff::Timestamp,
}
