"""Strict loading: YAML file + environment → ``Settings``, collecting every problem.

Environment overrides use ``AUTHGATE_<SECTION>__<KEY>`` (double underscore between levels),
e.g. ``AUTHGATE_STORAGE__URL`` or ``AUTHGATE_SECRETS__SESSION_KEY``; values are parsed as
YAML scalars/lists. ``AUTHGATE_CONFIG`` names the file.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import types
import typing
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml

from authgate.config.ldap_rules import ldap_problems, plain_url
from authgate.config.settings import Secret, Settings
from authgate.core.errors import ConfigError

ENV_PREFIX = "AUTHGATE_"
_NOT_SETTINGS = {"AUTHGATE_CONFIG", "AUTHGATE_POLICIES"}
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
DEMO_SECRET_PREFIX = "demo-insecure-"  # noqa: S105 - the label refused outside demo
MIN_SECRET_LENGTH = 32


def parse_duration(text: str) -> timedelta:
    """``1h30m`` → timedelta. Raises ValueError for anything else (including empty)."""
    m = _DURATION.match(text.strip())
    if not text.strip() or m is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 15m, 12h, 7d)")
    d, h, mi, s = (int(x) if x else 0 for x in m.groups())
    return timedelta(days=d, hours=h, minutes=mi, seconds=s)


def load_settings(path: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Load the file (``path`` or ``$AUTHGATE_CONFIG``) and apply environment overrides."""
    env = dict(os.environ if environ is None else environ)
    problems: list[str] = []
    data: dict[str, Any] = {}
    chosen = path or env.get("AUTHGATE_CONFIG")
    base = Path.cwd()
    if chosen:
        file = Path(chosen)
        base = file.resolve().parent
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError([f"{file}: cannot read: {exc.strerror}"]) from exc
        except yaml.YAMLError as exc:
            raise ConfigError([f"{file}: not valid YAML: {exc}"]) from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError([f"{file}: the top level must be a mapping"])
        data = _beside_file(loaded or {}, base)
    _apply_env(data, env, problems)
    return settings_from_mapping(data, base_dir=base, problems=problems)


def settings_from_mapping(data: Mapping[str, Any], *, base_dir: Path | None = None,
                          problems: list[str] | None = None) -> Settings:
    problems = [] if problems is None else problems
    ctx = _Ctx(base_dir or Path.cwd(), problems)
    settings = _resolve_paths(ctx.build(Settings, data, ""), ctx.base_dir)
    _check_semantics(settings, problems)
    if problems:
        raise ConfigError(problems)
    return settings


#: file paths written in the configuration file: (section path, key). Relative ones name
#: files beside the file, wherever the command runs from (issue 18 item 7)
_FILE_PATHS = ((("policy",), "path"), (("directory",), "break_glass_file"),
               (("directory", "file"), "path"), (("server",), "identity_key_file"),
               (("webauthn",), "attestation_roots_file"), (("audit",), "signing_key_file"))


def _beside_file(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Rewrite the relative paths of a loaded file against ``base`` (the file's directory):
    the ``_FILE_PATHS``, a relative SQLite URL and JSON-lines sink paths. Defaults and
    environment overrides are left as they are (relative to the working directory)."""
    for sections, key in _FILE_PATHS:
        node: Any = data
        for name in sections:
            node = node.get(name) if isinstance(node, dict) else None
        if isinstance(node, dict) and _relative(node.get(key)):
            node[key] = str(base / node[key])
    storage = data.get("storage")
    if isinstance(storage, dict):
        url = storage.get("url")
        if isinstance(url, str) and url.startswith("sqlite:///") and _relative(url[10:]):
            storage["url"] = f"sqlite:///{base / url[10:]}"
    audit = data.get("audit")
    sinks = audit.get("sinks") if isinstance(audit, dict) else None
    for sink in sinks if isinstance(sinks, list) else ():
        if isinstance(sink, dict) and _relative(sink.get("path")):
            sink["path"] = str(base / sink["path"])
    return data


def _relative(value: object) -> bool:
    return isinstance(value, str) and bool(value) and not Path(value).is_absolute() \
        and ":memory:" not in value


def _resolve_paths(settings: Settings, base_dir: Path) -> Settings:
    """A relative ``directory.ldap.ca_file`` names a file beside the configuration file, as
    ``*_file`` secrets do (issue 15 item 4), never one in whatever directory the command
    happened to start in."""
    witness = settings.audit.witness
    if witness and not Path(witness).is_absolute():  # audit.witness: the same rule
        settings = dataclasses.replace(settings, audit=dataclasses.replace(
            settings.audit, witness=str(base_dir / witness)))
    ldap = settings.directory.ldap
    if not ldap.ca_file or Path(ldap.ca_file).is_absolute():
        return settings
    resolved = dataclasses.replace(ldap, ca_file=str(base_dir / ldap.ca_file))
    return dataclasses.replace(
        settings, directory=dataclasses.replace(settings.directory, ldap=resolved))


def _apply_env(data: dict[str, Any], env: Mapping[str, str], problems: list[str]) -> None:
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name in _NOT_SETTINGS:
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX):].split("__")]
        if not all(keys):
            problems.append(f"{name}: malformed variable name")
            continue
        node = data
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                problems.append(f"{name}: {key} is not a section")
                break
            node = child
        else:
            try:
                node[keys[-1]] = yaml.safe_load(raw) if raw.strip() else ""
            except yaml.YAMLError:
                node[keys[-1]] = raw


class _Ctx:
    def __init__(self, base_dir: Path, problems: list[str]) -> None:
        self.base_dir = base_dir
        self.problems = problems

    def error(self, path: str, message: str) -> None:
        self.problems.append(f"{path or '(top level)'}: {message}")

    def build(self, cls: type, data: Any, path: str) -> Any:
        if not isinstance(data, Mapping):
            self.error(path, f"expected a mapping, got {type(data).__name__}")
            return cls()
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        secret_files = {f"{n}_file" for n, t in hints.items() if _is_secret(t)}
        for key in data:
            if key not in fields and key not in secret_files:
                self.error(_join(path, str(key)), "unknown key")
        values: dict[str, Any] = {}
        for name in fields:
            sub = _join(path, name)
            if _is_secret(hints[name]) and f"{name}_file" in data:
                values[name] = self._secret_file(data[f"{name}_file"], sub + "_file",
                                                 many=typing.get_origin(hints[name]) is tuple)
                if name in data:
                    self.error(sub, f"give either {name} or {name}_file, not both")
            elif name in data:
                values[name] = self.convert(hints[name], data[name], sub)
        return cls(**values)

    def _secret_file(self, raw: Any, path: str, *, many: bool = False) -> Any:
        """Read a secret from a file (one secret per non-blank line when ``many``)."""
        if not isinstance(raw, str):
            self.error(path, "expected a file path")
            return () if many else None
        file = Path(raw) if Path(raw).is_absolute() else self.base_dir / raw
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            self.error(path, f"cannot read secret file {file}: {exc.strerror}")
            return () if many else None
        if many:
            return tuple(Secret(line.strip(), source=str(file.resolve()))
                         for line in text.splitlines() if line.strip())
        return Secret(text.strip(), source=str(file.resolve()))

    def convert(self, tp: Any, value: Any, path: str) -> Any:  # noqa: C901 - a type switch
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            inner = [a for a in args if a is not type(None)]
            return self.convert(inner[0], value, path)
        if origin is Literal:
            if value not in args:
                self.error(path, f"must be one of {', '.join(map(str, args))}; got {value!r}")
            return value if value in args else args[0]
        if origin is tuple:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list):
                self.error(path, f"expected a list, got {type(value).__name__}")
                return ()
            return tuple(self.convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if dataclasses.is_dataclass(tp):
            return self.build(tp, value, path)  # type: ignore[arg-type]
        return self._scalar(tp, value, path)

    def _scalar(self, tp: Any, value: Any, path: str) -> Any:
        if tp is Secret:
            if not isinstance(value, str):
                self.error(path, "expected a string secret")
                return None
            return Secret(value)
        if tp is timedelta:
            try:
                return parse_duration(str(value))
            except ValueError as exc:
                self.error(path, str(exc))
                return timedelta(0)
        if tp is bool and not isinstance(value, bool):
            self.error(path, f"expected true or false, got {value!r}")
            return False
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if tp in (int, float) and (isinstance(value, bool) or not isinstance(value, tp)):
            self.error(path, f"expected a {tp.__name__}, got {value!r}")
            return tp()
        if tp is str and not isinstance(value, str):
            self.error(path, f"expected a string, got {type(value).__name__}")
            return ""
        return value


def _is_secret(tp: Any) -> bool:
    return tp is Secret or Secret in typing.get_args(tp)  # Secret | None, tuple[Secret, ...]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_semantics(s: Settings, problems: list[str]) -> None:
    """Cross-field rules, and refusing weak secrets outside demo mode."""
    for key, cidrs in (("trusted_proxies", s.server.trusted_proxies),
                       ("metrics_networks", s.server.metrics_networks)):
        for i, cidr in enumerate(cidrs):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                problems.append(f"server.{key}[{i}]: not a CIDR: {cidr!r}")
    if not re.match(r"^https?://[^/?#\s]+$", s.server.public_url.rstrip("/")):
        problems.append("server.public_url: expected http(s)://host[:port] with no path")
    if s.mode == "production" and s.server.public_url.startswith("http://"):
        problems.append("server.public_url: must be https outside demo mode")
    roots = s.webauthn.attestation_roots_file
    if roots and not Path(roots).is_file():
        problems.append(f"webauthn.attestation_roots_file: cannot read {roots}")
    if s.server.identity_key_file and not Path(s.server.identity_key_file).is_file():
        problems.append(f"server.identity_key_file: cannot read {s.server.identity_key_file}")
    for key, rate in (("webauthn.passkey_requests_per_minute",
                       s.webauthn.passkey_requests_per_minute),
                      ("server.refusal_records_per_minute", s.server.refusal_records_per_minute)):
        if rate < 1:
            problems.append(f"{key}: must be at least 1")
    if s.server.max_form_bytes < 1024:
        problems.append("server.max_form_bytes: must be at least 1024")
    if s.session.idle_timeout > s.session.max_age:
        problems.append("session.idle_timeout: longer than session.max_age")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", s.session.cookie_name):
        problems.append("session.cookie_name: letters, digits, _ and - only")
    for name, secret in (("session_key", s.secrets.session_key),
                         ("audit_key", s.secrets.audit_key)):
        _check_secret(s, name, secret, problems)
    if s.directory.backend == "ldap":
        _check_ldap(s, problems)
    _check_encryption_keys(s, problems)
    _check_audit(s, problems)


def _check_ldap(s: Settings, problems: list[str]) -> None:
    """The rules ``LdapDirectory`` enforces, reported here with their paths (not as a
    traceback when the directory is built), plus a readable CA file when TLS is used."""
    ldap = s.directory.ldap
    if not ldap.urls:
        problems.append("directory.ldap.urls: needed when directory.backend is ldap")
    problems.extend(f"directory.ldap.{name}: {message}" for name, message in ldap_problems(ldap)
                    if name != "urls")
    uses_tls = any(not plain_url(u, start_tls=ldap.start_tls) for u in ldap.urls)
    if uses_tls and ldap.ca_file:
        problem = _ca_file_problem(ldap.ca_file)
        if problem:
            problems.append(f"directory.ldap.ca_file: {problem}")


def _ca_file_problem(path: str) -> str:
    """Why the CA file cannot verify the DC ("" when it can): missing, unreadable or not
    PEM certificates, found here with its path instead of as a traceback later."""
    import ssl

    file = Path(path)
    if not file.is_file():
        return f"cannot read {path}: not a file"
    try:
        file.read_bytes()
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        return f"{path} holds no PEM certificate ({exc.reason or exc})"
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    except ValueError as exc:
        return f"cannot read {path}: {exc}"
    return ""


def _check_audit(s: Settings, problems: list[str]) -> None:
    a = s.audit
    for name, value in (("checkpoint_every", a.checkpoint_every),
                        ("writer_lanes", a.writer_lanes), ("buffer_size", a.buffer_size),
                        ("batch_size", a.batch_size)):
        if value < 1:
            problems.append(f"audit.{name}: must be at least 1")
    for i, sink in enumerate(a.sinks):
        if sink.type == "jsonl" and not sink.path:
            problems.append(f"audit.sinks[{i}].path: needed for a jsonl sink")
        if not 0 < sink.port < 65536:
            problems.append(f"audit.sinks[{i}].port: not a port number")
    if a.signing_key_file and not Path(a.signing_key_file).is_file():
        problems.append(f"audit.signing_key_file: cannot read {a.signing_key_file}")


def _check_encryption_keys(s: Settings, problems: list[str]) -> None:
    """``<kid>:<base64 of 32 bytes>``; at least one outside demo mode (TOTP seeds, ASVS 2.8.2)."""
    from authgate.core.secretbox import Keyring, SecretBoxError

    if not s.secrets.encryption_keys and s.mode != "demo":
        problems.append("secrets.encryption_keys: missing (generate one with "
                        "`authgate keys generate`)")
    seen: set[str] = set()
    for i, secret in enumerate(s.secrets.encryption_keys):
        kid = secret.reveal().partition(":")[0]
        try:
            Keyring.from_spec([secret.reveal()])
        except SecretBoxError:
            problems.append(f"secrets.encryption_keys[{i}]: expected <kid>:<base64 of 32 bytes>")
            continue
        if kid == "demo" and s.mode != "demo":
            problems.append(f"secrets.encryption_keys[{i}]: the demo key is refused outside "
                            "demo mode")
        elif kid in seen:
            problems.append(f"secrets.encryption_keys[{i}]: duplicate key id {kid!r}")
        seen.add(kid)


def _check_secret(s: Settings, name: str, secret: Secret | None, problems: list[str]) -> None:
    path = f"secrets.{name}"
    if secret is None:
        if s.mode != "demo":
            problems.append(f"{path}: missing (set it, {name}_file, or AUTHGATE_SECRETS__"
                            f"{name.upper()})")
        return
    value = secret.reveal()
    if s.mode != "demo" and value.startswith(DEMO_SECRET_PREFIX):
        problems.append(f"{path}: the demo secret is refused outside demo mode")
    elif len(value) < MIN_SECRET_LENGTH:
        problems.append(f"{path}: too short (at least {MIN_SECRET_LENGTH} characters)")
