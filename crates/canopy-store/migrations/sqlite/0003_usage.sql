-- Credits: a ledger of charged actions, running totals per subject and month (the row that
-- serialises concurrent charges), and spending caps.
CREATE TABLE usage_ledger (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    project_id TEXT,
    month TEXT NOT NULL,
    action TEXT NOT NULL,
    credits BIGINT NOT NULL,
    key_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX usage_ledger_org_month ON usage_ledger (org_id, month);
CREATE INDEX usage_ledger_project_month ON usage_ledger (project_id, month);

CREATE TABLE usage_totals (
    subject TEXT NOT NULL,
    month TEXT NOT NULL,
    used BIGINT NOT NULL,
    PRIMARY KEY (subject, month)
);

CREATE TABLE spending_caps (
    subject TEXT PRIMARY KEY,
    cap BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
