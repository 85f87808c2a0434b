-- Teams own recordings; a project token (api_token) identifies the team at capture.
CREATE TABLE teams (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  api_token text NOT NULL UNIQUE,
  session_recording_enabled boolean NOT NULL DEFAULT true,
  -- Retention class of new recordings: chooses the blob prefix that bucket lifecycle rules expire.
  session_recording_retention text NOT NULL DEFAULT '30d'
    CHECK (session_recording_retention IN ('30d', '90d', '1y', '5y')),
  console_log_capture_enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now()
);
