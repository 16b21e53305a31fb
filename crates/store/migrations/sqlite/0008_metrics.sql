-- Program KPIs (GET /api/v1/metrics, scorecards, /metrics gauges): each
-- aggregate reads one covering index instead of the table, in the order
-- of its GROUP BY, so SQLite needs no sort.

-- Wins and losses per partner and currency (top partners, revenue, deal
-- sizes), by close date, with the registration time for the sales cycle.
CREATE INDEX referrals_closed_idx ON referrals (workspace_id, status, partner_id, amount_currency, closed_at, amount_minor, created_at);
-- Registrations by date (referrals per partner), and each partner's by date (dormancy).
CREATE INDEX referrals_created_idx ON referrals (workspace_id, created_at, partner_id);
CREATE INDEX referrals_partner_created_idx ON referrals (workspace_id, partner_id, created_at);
-- The open pipeline by stage and currency (status is listed so that SQLite
-- sees the index as covering).
CREATE INDEX referrals_open_idx ON referrals
    (workspace_id, stage, amount_currency, estimated_currency, created_at, amount_minor, estimated_minor, partner_id, status)
    WHERE status = 'approved';
-- Decisions made by a person (the review SLA).
CREATE INDEX referrals_reviewed_idx ON referrals (workspace_id, decided_at, created_at, partner_id, decided_by) WHERE decided_by LIKE 'admin:%';
-- Direct deals won and lost by stage and currency, by close date.
CREATE INDEX deals_closed_idx ON deals (workspace_id, source, stage, currency, closed_at, amount_minor, created_at);
-- Partners by the date they joined (activation, days to first referral).
CREATE INDEX partners_created_idx ON partners (workspace_id, created_at, status, first_referral_at, tier);
