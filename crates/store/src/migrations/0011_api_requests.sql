-- API requests counted per account and UTC day. Each `serve` process counts authenticated
-- partner and distributor requests in memory and adds them here in batches (one upsert per
-- flush: requests = requests + the batch's count), so several processes sharing the database
-- add up. `day` is the day's first instant (00:00 UTC) in unix milliseconds, like every other
-- time column. No foreign key: `account_id` names a partner or a distributor by `account_kind`.

CREATE TABLE api_request_counts (
    account_kind  TEXT NOT NULL CHECK (account_kind IN ('partner', 'distributor')),
    account_id    TEXT NOT NULL,
    day           BIGINT NOT NULL,
    requests      BIGINT NOT NULL CHECK (requests >= 0),
    PRIMARY KEY (account_kind, account_id, day)
);
