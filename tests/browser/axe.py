"""axe-core in the browser suite: any test calls ``check_page(page, name)`` on a page it shows.

axe-core comes from the npm registry, pinned with its sha512 in ``tests/browser/npm/
package-lock.json`` and installed by ``scripts/install-system-deps.sh`` (``make test``) into
``.cache/axe`` with ``npm ci``; if it is missing, the first check installs it the same way.
It is injected with selenium's ``execute_script``: chromedriver evaluates that through the
DevTools protocol (``Runtime.callFunctionOn``), which the page's Content-Security-Policy does
not govern, so the strict CSP (no inline script, nonces only) stays as it is; callers can
check the browser log for CSP refusals afterwards.

A check runs the WCAG 2.0/2.1 A and AA rules (tags ``wcag2a wcag2aa wcag21a wcag21aa``,
https://github.com/dequelabs/axe-core/blob/develop/doc/rule-descriptions.md) and fails on any
``serious`` or ``critical`` violation, naming the page, the rule, the impact and each target.
Every result (also the moderate and minor ones) is kept in ``test-artifacts/axe/NAME.json``.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pytest

from tests.browser.conftest import Page
from tests.integration.harness import ROOT

NPM_DIR = ROOT / "tests" / "browser" / "npm"
AXE_DIR = ROOT / ".cache" / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "axe"
TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
BLOCKING = frozenset({"serious", "critical"})

RUN = """
const [tags, done] = arguments;
axe.run(document, {runOnly: {type: "tag", values: tags},
                   resultTypes: ["violations"]})
  .then(r => done({version: axe.version, url: r.url, passes: r.passes.length,
                   incomplete: r.incomplete.length,
                   violations: r.violations.map(v => ({
                     id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                     nodes: v.nodes.map(n => ({target: n.target.join(" "), html: n.html,
                                               summary: n.failureSummary}))}))}))
  .catch(e => done({error: String(e)}));
"""


@dataclass(frozen=True)
class AxeResult:
    name: str
    url: str
    version: str
    passes: int
    violations: list[dict[str, Any]]

    @property
    def blocking(self) -> list[dict[str, Any]]:
        return [v for v in self.violations if v["impact"] in BLOCKING]


def _install() -> None:
    """``npm ci`` of the pinned lock file into .cache/axe (as the install script does)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("the accessibility check needs npm (apt-get install -y npm, or run "
                    "scripts/install-system-deps.sh)", pytrace=False)
    AXE_DIR.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(NPM_DIR / name, AXE_DIR / name)
    subprocess.run([npm, "ci", "--prefix", str(AXE_DIR), "--ignore-scripts", "--no-audit",
                    "--no-fund", "--loglevel=error"], check=True, timeout=300)


@lru_cache(maxsize=1)
def axe_source() -> str:
    if not AXE_JS.is_file():
        _install()
    return AXE_JS.read_text(encoding="utf-8")


def run_axe(page: Page, name: str) -> AxeResult:
    """axe on the page as it is now, saved to test-artifacts/axe/NAME.json."""
    driver = page.driver
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(axe_source())
    got = driver.execute_async_script(RUN, list(TAGS))
    assert "error" not in got, f"axe failed on {name} ({page.url}): {got['error']}"
    result = AxeResult(name=name, url=str(got["url"]), version=str(got["version"]),
                       passes=int(got["passes"]), violations=list(got["violations"]))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.json").write_text(json.dumps({
        "page": name, "url": result.url, "title": driver.title, "axe": result.version,
        "tags": TAGS, "passes": result.passes, "violations": result.violations}, indent=1),
        encoding="utf-8")
    return result


def describe(result: AxeResult, title: str = "") -> str:
    """Readable: one line per rule, one per element it found."""
    lines = [f"axe-core {result.version}: {len(result.blocking)} serious/critical "
             f"violation(s) on page {result.name!r} ({title} {result.url}):"]
    for v in result.blocking:
        lines.append(f"  {v['id']} [{v['impact']}] {v['help']} ({v['helpUrl']})")
        for node in v["nodes"][:8]:
            summary = " ".join(str(node["summary"] or "").split())[:300]
            lines.append(f"    at {node['target']}: {summary}")
    return "\n".join(lines)


def check_page(page: Page, name: str, *, screenshot: bool = True) -> AxeResult:
    """Zero serious or critical WCAG 2.1 A/AA violations on the current page.

    ``name`` names the screenshot (test-artifacts/screenshots/NAME.png) and the result file.
    """
    page.wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
    if screenshot:
        page.screenshot(name)
    result = run_axe(page, name)
    assert result.passes > 0, f"axe checked nothing on {name} ({result.url})"
    assert not result.blocking, describe(result, str(page.driver.title))
    return result
