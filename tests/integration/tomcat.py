"""A real servlet back end for the integration tests: Debian's Tomcat 10.1.

Runs as a normal user (the ``tomcat`` account Debian's package creates, when the tests run as
root) from a base directory of its own (``CATALINA_BASE``) on a free loopback port, with one
tiny ROOT webapp: a JSP mapped to ``/*`` that echoes the host and the path Tomcat served
(``getServletPath() + getPathInfo()``: decoded, ``;params`` stripped, dot segments resolved)
and an access log of the ``X-Request-ID`` nginx sends, so a test can prove a request never
reached it. Installed by scripts/install-system-deps.sh; missing, the tests fail loudly.
"""
from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import requests

from tests.integration.harness import Proc, _spawn, wait_until

CATALINA_HOME = Path("/usr/share/tomcat10")

SERVER_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Server port="-1" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector port="{port}" address="127.0.0.1" protocol="HTTP/1.1" connectionTimeout="5000"/>
    <Engine name="Catalina" defaultHost="localhost">
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false">
        <Valve className="org.apache.catalina.valves.AccessLogValve" directory="logs"
               prefix="access" suffix=".log" rotatable="false" buffered="false"
               pattern="%{{X-Request-ID}}i %s %U"/>
      </Host>
    </Engine>
  </Service>
</Server>
"""

WEB_XML = """<?xml version="1.0" encoding="UTF-8"?>
<web-app xmlns="https://jakarta.ee/xml/ns/jakartaee" version="6.0">
  <servlet><servlet-name>echo</servlet-name><jsp-file>/echo.jsp</jsp-file></servlet>
  <servlet-mapping><servlet-name>echo</servlet-name><url-pattern>/*</url-pattern></servlet-mapping>
</web-app>
"""

ECHO_JSP = r"""<%@ page contentType="application/json; charset=UTF-8" session="false" %><%!
static String q(String s) {
  if (s == null) return "null";
  StringBuilder b = new StringBuilder("\"");
  for (char c : s.toCharArray()) {
    if (c == '"' || c == '\\') b.append('\\').append(c);
    else if (c < 0x20 || c > 0x7e) b.append(String.format("\\u%04x", (int) c));
    else b.append(c);
  }
  return b.append('"').toString();
}
%><% String info = request.getPathInfo() == null ? "" : request.getPathInfo(); %>
{"app": "tomcat", "host": <%= q(request.getServerName()) %>,
 "path": <%= q(request.getServletPath() + info) %>, "uri": <%= q(request.getRequestURI()) %>,
 "remote_user": <%= q(request.getHeader("Remote-User")) %>}
"""


def _owner() -> pwd.struct_passwd | None:
    """The account Tomcat runs as: ``tomcat`` (or ``nobody``) when we are root, else us."""
    if os.geteuid() != 0:
        return None
    for name in ("tomcat", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("no unprivileged account to run Tomcat as (tomcat10 creates `tomcat`)")


def make_base(base: Path, port: int) -> Path:
    """CATALINA_BASE with conf/, logs/, temp/, work/ and the echo webapp."""
    for sub in ("conf", "logs", "temp", "work", "webapps/ROOT/WEB-INF"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(CATALINA_HOME / "etc" / "web.xml", base / "conf" / "web.xml")
    (base / "conf" / "server.xml").write_text(SERVER_XML.format(port=port), encoding="utf-8")
    (base / "webapps" / "ROOT" / "WEB-INF" / "web.xml").write_text(WEB_XML, encoding="utf-8")
    (base / "webapps" / "ROOT" / "echo.jsp").write_text(ECHO_JSP, encoding="utf-8")
    owner = _owner()
    base.chmod(0o755)
    if owner is not None:
        for path in (base, *base.rglob("*")):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    return base


def start_tomcat(port: int) -> Proc:
    """Tomcat in the foreground (``Bootstrap start``), ready when the echo JSP answers.

    Its base is a world-traversable temporary directory (pytest's are 0700 root), in
    ``proc.extra["base"]`` for the caller to remove."""
    java = shutil.which("java")
    if java is None or not (CATALINA_HOME / "bin" / "bootstrap.jar").exists():
        raise RuntimeError("tomcat10 is not installed (scripts/install-system-deps.sh does it); "
                           "the integration tests need the real thing and never skip")
    base = make_base(Path(tempfile.mkdtemp(prefix="authgate-tomcat-")), port)
    classpath = f"{CATALINA_HOME}/bin/bootstrap.jar:{CATALINA_HOME}/bin/tomcat-juli.jar"
    args = [java, f"-Dcatalina.home={CATALINA_HOME}", f"-Dcatalina.base={base}",
            f"-Djava.io.tmpdir={base / 'temp'}", "-Xms32m", "-Xmx128m", "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1", "-cp", classpath, "org.apache.catalina.startup.Bootstrap",
            "start"]
    owner = _owner()
    if owner is not None:
        args = ["runuser", "-u", owner.pw_name, "--", *args]
    log = base / "logs" / "stdout.log"
    proc = Proc("tomcat", _spawn("tomcat", args, log, cwd=base), log,
                extra={"access_log": base / "logs" / "access.log", "base": base})
    wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/ready", timeout=2)
               .json().get("app") == "tomcat", proc, timeout=60)
    return proc
