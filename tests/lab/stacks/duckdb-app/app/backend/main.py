"""backend (lab edition of the FastAPI service): :12000, keeps its state in the single
file data/app.db (bind-mounted), records a row per heartbeat, /health opens the file."""

import os
import sqlite3
import time

import labkit

DB_PATH = os.environ.get("DB_PATH", "/app/data/app.db")


def db():
    conn = sqlite3.connect(DB_PATH, timeout=5)
    conn.execute("PRAGMA journal_mode=DELETE")
    return conn


def init():
    os.makedirs(os.path.dirname(DB_PATH), exist_ok=True)
    with db() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, at REAL NOT NULL, kind TEXT NOT NULL)")
        conn.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        if conn.execute("SELECT count(*) FROM items").fetchone()[0] == 0:
            conn.executemany("INSERT INTO items (name) VALUES (?)", [("alpha",), ("beta",), ("gamma",)])
        conn.execute("INSERT INTO events (at, kind) VALUES (?, 'start')", (time.time(),))
    labkit.info(f"database ready at {DB_PATH}")


def check():
    with db() as conn:
        conn.execute("SELECT 1").fetchone()


def route_health(_req):
    return labkit.text(*labkit.health(check))


def route_items(_req):
    with db() as conn:
        rows = conn.execute("SELECT id, name FROM items ORDER BY id").fetchall()
    return labkit.as_json(200, [{"id": i, "name": n} for i, n in rows])


def route_stats(_req):
    with db() as conn:
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        items = conn.execute("SELECT count(*) FROM items").fetchone()[0]
    return labkit.as_json(200, {"events": events, "items": items, "db": DB_PATH})


def heartbeat():
    with db() as conn:
        conn.execute("INSERT INTO events (at, kind) VALUES (?, 'heartbeat')", (time.time(),))
    return f"db={os.path.getsize(DB_PATH)}B"


if __name__ == "__main__":
    init()
    labkit.serve(
        12000,
        {"/health": route_health, "/api/items": route_items, "/api/stats": route_stats, "/items": route_items},
        heartbeat_every=10,
        heartbeat_extra=heartbeat,
    )
