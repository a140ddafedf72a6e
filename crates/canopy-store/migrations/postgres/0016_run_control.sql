-- Run control (retry a step, recover a run): the attempt a step run was reset at. Attempt
-- numbers keep counting up across resets (idempotency keys stay unique), while the retry
-- budget (`max_attempts`) counts only the attempts since the last reset.
ALTER TABLE step_runs ADD COLUMN attempt_base BIGINT NOT NULL DEFAULT 0;
