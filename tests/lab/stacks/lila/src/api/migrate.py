"""Apply migrations/*.sql in order, once each, recording them in __drizzle_migrations like
Drizzle's migrator does. Runs at container start, before the server."""

import hashlib
import os
import sys
import time

import psycopg2

import labkit

URL = os.environ["DATABASE_URL"]
HERE = os.path.dirname(os.path.abspath(__file__))


def connect():
    deadline = time.monotonic() + 60
    while True:
        try:
            return psycopg2.connect(URL, connect_timeout=2)
        except psycopg2.OperationalError as exc:
            if time.monotonic() > deadline:
                raise
            labkit.warn(f"migrate: database not ready ({str(exc).strip()}); retrying")
            time.sleep(1)


def main():
    conn = connect()
    conn.autocommit = False
    with conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS __drizzle_migrations"
            " (id serial PRIMARY KEY, name text UNIQUE NOT NULL, hash text NOT NULL, created_at bigint)"
        )
        cur.execute("SELECT name FROM __drizzle_migrations")
        done = {row[0] for row in cur.fetchall()}
        files = sorted(f for f in os.listdir(os.path.join(HERE, "migrations")) if f.endswith(".sql"))
        applied = 0
        for name in files:
            if name in done:
                continue
            with open(os.path.join(HERE, "migrations", name), encoding="utf-8") as fh:
                sql = fh.read()
            labkit.info(f"migrate: applying {name}")
            cur.execute(sql)
            cur.execute(
                "INSERT INTO __drizzle_migrations (name, hash, created_at) VALUES (%s, %s, %s)",
                (name, hashlib.sha256(sql.encode()).hexdigest(), int(time.time() * 1000)),
            )
            applied += 1
    conn.close()
    labkit.info(f"migrate: {applied} applied, {len(files)} total; schema up to date")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:
        labkit.error(f"migrate: failed: {exc}")
        sys.exit(1)
