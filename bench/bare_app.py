"""The baseline for bench/signals.py: one Flask endpoint doing nothing, served by the same
gunicorn configuration as the bridge (``gunicorn -c deploy/gunicorn.conf.py
bench.bare_app:app``)."""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/webhook/tradingview")
def webhook() -> object:
    request.get_data()
    return jsonify(status="placed")
