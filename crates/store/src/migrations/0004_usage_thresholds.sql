-- Usage thresholds already announced: one row per partner, month and threshold (80 or 100 per
-- cent of the monthly run limit), so each `usage.threshold_reached` is sent once.

CREATE TABLE usage_thresholds (
    partner_id  TEXT NOT NULL REFERENCES partners (id),
    month       TEXT NOT NULL,
    threshold   SMALLINT NOT NULL CHECK (threshold IN (80, 100)),
    reached_at  BIGINT NOT NULL,
    PRIMARY KEY (partner_id, month, threshold)
);
