"""Prometheus' side of ps_mem's textfile, with the real pieces.

    exporter = NodeExporter(directory)  # Debian's prometheus-node-exporter
    text = exporter.scrape()            # GET http://127.0.0.1:PORT/metrics
    exporter.stop()

The exporter listens on loopback, on a port that was free, with only the
textfile collector, reading `directory` as --collector.textfile.directory;
conftest.py's `node_exporter` fixture starts one per test in tmp_path and
stops it after.

    families(text)        {name: Family(help, type, samples)}, as
                          prometheus_client's parser reads the text
    series(text, prefix)  {(name, ((label, value), ...)): value} for the
                          families whose names start with prefix

Both parse with prometheus_client (PyPI), for unit tests of ps_mem's
exposition text as well as for scrapes.
"""

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, NamedTuple, Optional, Tuple

from prometheus_client.parser import text_string_to_metric_families

EXPORTER = "prometheus-node-exporter"
START_TIMEOUT = 30  # seconds the exporter may take to answer its first scrape

Labels = Tuple[Tuple[str, str], ...]


class Family(NamedTuple):
    help: str
    type: str
    samples: Dict[Labels, float]


def families(text: str) -> Dict[str, Family]:
    """The metric families of exposition TEXT (a ValueError where it is not
    valid), label values unescaped."""
    found: Dict[str, Family] = {}
    for family in text_string_to_metric_families(text):
        if family.name in found:
            raise ValueError("metric family %s appears twice" % family.name)
        samples: Dict[Labels, float] = {}
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            if labels in samples:
                raise ValueError("series %s%r appears twice" % (sample.name, labels))
            samples[labels] = sample.value
        found[family.name] = Family(family.documentation, family.type, samples)
    return found


def series(text: str, prefix: str = "") -> Dict[Tuple[str, Labels], float]:
    """Every series of the families named PREFIX..., with its value."""
    return {(name, labels): value
            for name, family in families(text).items() if name.startswith(prefix)
            for labels, value in family.samples.items()}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class NodeExporter:
    """Debian's node_exporter serving the textfiles of `directory`."""

    def __init__(self, directory: os.PathLike, log: Optional[Path] = None) -> None:
        self.directory = Path(directory)
        self.log_path = log or self.directory.parent / "node_exporter.log"
        # Proxies from the environment must not see loopback requests.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        # A port that was free may be taken before the exporter binds it.
        for _attempt in range(3):
            self.port = _free_port()
            self._start()
            if self._wait_until_serving():
                return
        raise RuntimeError("%s did not start: %s" % (EXPORTER, self.log()))

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d/metrics" % self.port

    def _start(self) -> None:
        command = [shutil.which(EXPORTER) or EXPORTER,
                   "--web.listen-address=127.0.0.1:%d" % self.port,
                   "--collector.disable-defaults", "--collector.textfile",
                   "--collector.textfile.directory=%s" % self.directory,
                   "--web.disable-exporter-metrics"]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT)

    def _wait_until_serving(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                self.scrape()
                return True
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        self.stop()
        return False

    def scrape(self) -> str:
        with self._opener.open(self.url, timeout=10) as response:
            return response.read().decode("utf-8")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def missing() -> Optional[str]:
    """Why the exporter cannot run here (a reason to skip), or None."""
    if shutil.which(EXPORTER) is None:
        return "%s is not installed (apt-get install %s)" % (EXPORTER, EXPORTER)
    return None
