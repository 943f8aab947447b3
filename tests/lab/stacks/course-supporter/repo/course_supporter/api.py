"""course-supporter API (lab edition): the real app is FastAPI under uvicorn with two
workers; this one keeps its shape with the standard library: a master and APP_WORKERS
workers on :8000, /health that asks the database, and a log line per request."""

import os

import psycopg2

from course_supporter import labkit

DATABASE_URL = os.environ["DATABASE_URL"]


def query(sql):
    conn = psycopg2.connect(DATABASE_URL, connect_timeout=2)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def route_health(_req):
    return labkit.text(*labkit.health(lambda: query("SELECT 1")))


def route_root(_req):
    return labkit.as_json(200, {"service": "course-supporter", "docs": "/courses", "health": "/health"})


def route_courses(_req):
    rows = query("SELECT id, title FROM courses ORDER BY id")
    return labkit.as_json(200, [{"id": r[0], "title": r[1]} for r in rows])


def route_schema(_req):
    rows = query("SELECT version_num FROM alembic_version")
    return labkit.as_json(200, {"alembic_version": rows[0][0] if rows else None})


def heartbeat():
    (count,) = query("SELECT count(*) FROM pg_stat_activity")[0]
    return f"db connections={count}"


if __name__ == "__main__":
    labkit.info("starting course-supporter API (python -m course_supporter.api)")
    labkit.serve(
        8000,
        {"/health": route_health, "/": route_root, "/courses": route_courses, "/schema": route_schema},
        workers=int(os.environ.get("APP_WORKERS", "2")),
        heartbeat_every=15,
        heartbeat_extra=heartbeat,
    )
