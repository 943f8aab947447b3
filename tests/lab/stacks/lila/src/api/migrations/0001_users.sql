CREATE TABLE users (id text PRIMARY KEY, email text UNIQUE NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE sessions (id text PRIMARY KEY, user_id text NOT NULL REFERENCES users(id), expires_at timestamptz NOT NULL);
INSERT INTO users (id, email) VALUES ('u1', 'ana@example.org'), ('u2', 'ben@example.org');
