"""Reading an instance's /metrics as Prometheus does: the text format, parsed into samples."""
from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """One scrape of /metrics: sample values by name and labels."""

    def __init__(self, text: str):
        self.text = text
        self.samples = [
            (sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    @classmethod
    def of(cls, base_url: str, **kwargs) -> "Scrape":
        response = requests.get(base_url + "/metrics", timeout=30, **kwargs)
        assert response.status_code == 200, response.status_code
        assert response.headers["Content-Type"].startswith("text/plain")
        return cls(response.text)

    def value(self, name: str, **labels: str) -> float:
        """The one sample of `name` whose labels include `labels`; 0 if there is none."""
        found = [value for sample_name, sample_labels, value in self.samples
                 if sample_name == name and labels.items() <= sample_labels.items()]
        assert len(found) <= 1, (name, labels, found)
        return found[0] if found else 0.0

    def total(self, name: str, **labels: str) -> float:
        """The sum of every sample of `name` whose labels include `labels`."""
        return sum(value for sample_name, sample_labels, value in self.samples
                   if sample_name == name and labels.items() <= sample_labels.items())

    def label_values(self, name: str, label: str) -> set[str]:
        return {sample_labels[label] for sample_name, sample_labels, _ in self.samples
                if sample_name == name and label in sample_labels}
