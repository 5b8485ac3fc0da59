-- The worker protocol: finding runs whose lease has ended, and queued runs by product.

CREATE INDEX runs_leases ON runs (status, lease_expires_at);
CREATE INDEX runs_queue_product ON runs (status, product, created_at);
