"""lila api (lab edition): :3000, /health asks the database and honours the lab's
unhealthy switch (/app/flags/unhealthy), a log line per request."""

import os

import psycopg2

import labkit

URL = os.environ["DATABASE_URL"]


def query(sql):
    conn = psycopg2.connect(URL, connect_timeout=2)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def route_health(_req):
    return labkit.text(*labkit.health(lambda: query("SELECT 1")))


def route_languages(_req):
    rows = query("SELECT code, name FROM languages ORDER BY code")
    return labkit.as_json(200, [{"code": c, "name": n} for c, n in rows])


def route_words(_req):
    rows = query("SELECT w.id, l.code, w.text FROM words w JOIN languages l ON l.id = w.language_id ORDER BY w.id")
    return labkit.as_json(200, [{"id": i, "lang": c, "text": t} for i, c, t in rows])


def heartbeat():
    (users,) = query("SELECT count(*) FROM users")[0]
    return f"users={users}"


if __name__ == "__main__":
    labkit.info("lila api starting on :3000")
    labkit.serve(
        3000,
        {"/health": route_health, "/languages": route_languages, "/words": route_words},
        heartbeat_every=10,
        heartbeat_extra=heartbeat,
    )
