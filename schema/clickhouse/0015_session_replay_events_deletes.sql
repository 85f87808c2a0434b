-- Deleting a session (DESIGN §3.9) removes its rows with a lightweight DELETE; the table's projection (the sink's
-- resume points) is rebuilt on the parts a delete touches, so it never counts removed rows.
ALTER TABLE session_replay_events MODIFY SETTING lightweight_mutation_projection_mode = 'rebuild'
