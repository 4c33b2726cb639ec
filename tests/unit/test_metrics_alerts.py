"""The shipped alert rules (deploy/prometheus/authgate-alerts.yml) are valid Prometheus rules
(Debian's ``promtool``, when installed; the YAML is parsed either way) and name only metrics a
scrape of authgate exports (#18 item 1)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "authgate-alerts.yml"
ALERTS = {"AuthgatePasswordSprayDetected", "AuthgateBreakGlassUsed", "AuthgateAuditSinkLagging",
          "AuthgateCheckpointTooOld", "AuthgateDirectoryDown"}


def _exported(client) -> set[str]:  # type: ignore[no-untyped-def]
    """Every series name a scrape can carry, families without samples yet included."""
    text = client.get("/metrics").get_data(as_text=True)
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
    return names


def test_alert_rules_parse_and_cover_the_promised_alerts() -> None:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    alerts = {rule["alert"] for group in groups for rule in group["rules"]}
    assert ALERTS <= alerts
    for group in groups:
        for rule in group["rules"]:
            assert rule["expr"] and rule["labels"]["severity"] in ("warning", "critical")


@pytest.mark.integration  # Debian's promtool: make test installs it (never skipped)
def test_promtool_accepts_the_alert_rules() -> None:
    assert shutil.which("promtool"), "promtool missing: scripts/install-system-deps.sh"
    done = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_metric_in_the_alert_rules_is_exported(client, services) -> None:  # type: ignore[no-untyped-def]
    from authgate.web import create_verify_app

    named = set(re.findall(r"\bauthgate_[a-z_]+", RULES.read_text(encoding="utf-8")))
    verify = create_verify_app({"services": services, "TESTING": True}).test_client()
    exported = _exported(client) | _exported(verify)
    assert named and named <= exported, named - exported
