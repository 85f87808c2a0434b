-- What a personal API key may do besides reading its teams' recordings: `delete` allows the delete routes
-- (DESIGN §3.9). Keys created before scopes existed read only.
ALTER TABLE personal_api_keys ADD COLUMN scopes text[] NOT NULL DEFAULT '{read}';
