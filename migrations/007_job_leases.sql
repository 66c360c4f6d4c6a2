-- Jobs are held by lease like re-embedding runs (src/platform/lease.ts): `lease_until` says when
-- a holder that stopped renewing loses the job. Running jobs keep the lease they had (5 minutes,
-- the JOB_LEASE_MS default, from their claim).
ALTER TABLE jobs ADD COLUMN lease_until timestamptz;
UPDATE jobs SET lease_until = locked_at + interval '5 minutes' WHERE status = 'running';
