//! Salesforce Outbound Messages (a workflow rule or flow POSTs a SOAP
//! `notifications` document when an Opportunity changes): parsing, the
//! changes they carry, and the `Ack` Salesforce needs back.
//!
//! Rules: delivery is at least once and out of order, so each
//! notification `Id` is applied once and a poll confirms the current
//! state. The message names its `OrganizationId`, which must be the
//! connected org's; the input is bounded by the server's body limit and
//! read as a flat event stream (no recursion, no entity expansion beyond
//! XML's predefined ones).

use std::collections::BTreeMap;

use jiff::Timestamp;
use partnerloop_app::crm::CrmDealChange;
use partnerloop_domain::money::Currency;
use quick_xml::Reader;
use quick_xml::events::Event;

use crate::http::money_from_text;
use crate::salesforce::REFERRAL_FIELD;

/// What Salesforce must receive for it to stop redelivering.
pub const ACK: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>"#,
    r#"<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse>"#,
    r#"</soapenv:Body></soapenv:Envelope>"#
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub organization_id: String,
    pub notifications: Vec<OutboundNotification>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundNotification {
    /// Deduplication key.
    pub id: String,
    /// `Opportunity` (from `xsi:type="sf:Opportunity"`), when given.
    pub object_type: Option<String>,
    /// The sObject's fields by local name (`Id`, `StageName`, `Amount`, …).
    pub fields: BTreeMap<String, String>,
}

impl OutboundNotification {
    /// The Opportunity stage change it reports, if it is one.
    pub fn change(&self, currency: Currency, now: Timestamp) -> Option<CrmDealChange> {
        if self.object_type.as_deref().is_some_and(|t| t != "Opportunity") {
            return None;
        }
        Some(CrmDealChange {
            deal_id: self.fields.get("Id")?.clone(),
            referral_id: self.fields.get(REFERRAL_FIELD).filter(|v| !v.is_empty()).cloned(),
            stage: self.fields.get("StageName")?.clone(),
            amount: self.fields.get("Amount").and_then(|a| money_from_text(a, currency)),
            changed_at: self.fields.get("SystemModstamp").and_then(|t| t.parse().ok()).unwrap_or(now),
        })
    }
}

/// Reads a `notifications` SOAP envelope.
pub fn parse(body: &[u8]) -> Result<OutboundMessage, String> {
    // Text is kept whole (entities split it into pieces) and trimmed per field.
    let mut reader = Reader::from_reader(body);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut org = None;
    let mut notifications = Vec::new();
    let mut current: Option<OutboundNotification> = None;
    let mut buf = Vec::new();
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| format!("not XML: {e}"))?;
        match event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_owned();
                if name == "Notification" {
                    current = Some(OutboundNotification { id: String::new(), object_type: None, fields: BTreeMap::new() });
                }
                if name == "sObject"
                    && let Some(n) = current.as_mut()
                {
                    n.object_type = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == "type")
                        .map(|a| a.value.rsplit(':').next().unwrap_or_default().to_owned());
                }
                path.push(name);
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                match quick_xml::escape::resolve_predefined_entity(&name) {
                    Some(s) => text.push_str(s),
                    None => match r.resolve_char_ref() {
                        Ok(Some(c)) => text.push(c),
                        _ => return Err(format!("unknown entity &{name};")),
                    },
                }
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                let parent = path.last().map(String::as_str);
                match (name.as_str(), parent) {
                    ("OrganizationId", Some("notifications")) => org = Some(text.trim().to_owned()),
                    ("Id", Some("Notification")) => {
                        if let Some(n) = current.as_mut() {
                            n.id = text.trim().to_owned();
                        }
                    }
                    ("Notification", _) => {
                        if let Some(n) = current.take().filter(|n| !n.id.is_empty()) {
                            notifications.push(n);
                        }
                    }
                    (field, Some("sObject")) => {
                        if let Some(n) = current.as_mut() {
                            n.fields.insert(field.to_owned(), text.trim().to_owned());
                        }
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let organization_id = org.filter(|o| !o.is_empty()).ok_or("no OrganizationId in the message")?;
    Ok(OutboundMessage { organization_id, notifications })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D000000000001EAA</OrganizationId>
   <ActionId>04k000000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/66.0/00D000000000001</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/66.0/00D000000000001</PartnerUrl>
   <Notification>
    <Id>04l000000000001AAA</Id>
    <sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>006000000000001AAA</sf:Id>
     <sf:Amount>1500.5</sf:Amount>
     <sf:Prm_Referral_Id__c>ref_01</sf:Prm_Referral_Id__c>
     <sf:StageName>Proposal/Price Quote &amp; Review</sf:StageName>
    </sObject>
   </Notification>
   <Notification>
    <Id>04l000000000002AAA</Id>
    <sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>001000000000001AAA</sf:Id></sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#;

    #[test]
    fn a_notification_becomes_a_stage_change_and_other_objects_do_not() {
        let m = parse(MESSAGE.as_bytes()).unwrap();
        assert_eq!(m.organization_id, "00D000000000001EAA");
        assert_eq!(m.notifications.len(), 2);
        let now = Timestamp::UNIX_EPOCH;
        let c = m.notifications[0].change(Currency::USD, now).unwrap();
        assert_eq!(c.deal_id, "006000000000001AAA");
        assert_eq!(c.stage, "Proposal/Price Quote & Review", "entities resolved");
        assert_eq!(c.referral_id.as_deref(), Some("ref_01"));
        assert_eq!(c.amount.map(|a| a.minor()), Some(150_050));
        assert_eq!(m.notifications[0].id, "04l000000000001AAA");
        assert!(m.notifications[1].change(Currency::USD, now).is_none(), "an Account is no stage change");
    }

    #[test]
    fn garbage_and_messages_without_an_org_are_refused() {
        assert!(parse(b"<notifications><Notification><Id>1</Id></Notification></notifications>").is_err());
        assert!(parse(b"not xml at all <<<").is_err() || parse(b"not xml at all <<<").unwrap().notifications.is_empty());
        assert!(parse(b"<a>&bogus;</a>").is_err());
    }
}
