-- Inbound mail finds the partner behind a sender address in any workspace.
CREATE INDEX partner_contacts_email_idx ON partner_contacts (email);
