-- Change events are found by time (`list_changes`); only they need that index. A partial
-- index spares every other signal (alerts, anomalies) an insert at a random place.
DROP INDEX IF EXISTS signals_kind_start;
CREATE INDEX signals_changes ON signals (start_ms) WHERE kind = 'change';
