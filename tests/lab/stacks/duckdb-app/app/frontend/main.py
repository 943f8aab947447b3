"""frontend (lab edition of the Flask app): :12001, renders the backend's items."""

import html
import json
import os
import urllib.request

import labkit

BACKEND = os.environ.get("BACKEND_URL", "http://backend:12000")


def fetch(path):
    with urllib.request.urlopen(BACKEND + path, timeout=3) as resp:
        return json.loads(resp.read())


def check():
    with urllib.request.urlopen(BACKEND + "/health", timeout=3) as resp:
        resp.read()


def route_health(_req):
    return labkit.text(*labkit.health(check))


def route_index(_req):
    items = fetch("/api/items")
    rows = "".join(f"<li>{html.escape(i['name'])}</li>" for i in items)
    return 200, f"<!doctype html><title>app</title><h1>Items</h1><ul>{rows}</ul>\n", "text/html; charset=utf-8"


if __name__ == "__main__":
    labkit.serve(12001, {"/health": route_health, "/": route_index}, heartbeat_every=20)
