"""The signal tests' live-mode bridge on a loopback sandbox, plus reading ``/metrics``."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.signals.conftest import Bridge, bridge, make_bridge

__all__ = ["Bridge", "Scrape", "bridge", "make_bridge", "scrape"]


class Scrape:
    """One scrape of ``/metrics``: sample values by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, frozenset(sample.labels.items()))
                self.samples[key] = sample.value

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def has(self, name: str, **labels: str) -> bool:
        return (name, frozenset(labels.items())) in self.samples

    def total(self, name: str) -> float:
        return sum(value for (sample, _), value in self.samples.items() if sample == name)


def scrape(bridge: Bridge) -> Scrape:
    response = bridge.client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return Scrape(response.get_data(as_text=True))
