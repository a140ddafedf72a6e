-- What each step run consumed (tokens, cost) over all its attempts, as JSON; a run's usage is
-- the sum over its steps.
ALTER TABLE step_runs ADD COLUMN usage TEXT;
