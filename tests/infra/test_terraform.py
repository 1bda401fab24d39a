"""Static checks of terraform/ against the code and the policy (P4, P5, P6, P22, P27).

`terraform validate` needs the providers, which CI cannot download; these tests read the HCL with
python-hcl2 instead and check what the policy depends on: every function directory is deployed
(and nothing else is), event triggers match the code, each function has its own identity, the
public API is HTTPS-only behind Cloud Armor, TTL policies exist, secrets only come from Secret
Manager, and the alerting of P6 is declared.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

from shared import datamap

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
FUNCTIONS = REPO / "functions"

pytestmark = pytest.mark.policy("P4")

# --- Loading -------------------------------------------------------------------------------------

_OPTIONS = hcl2.SerializationOptions(
    strip_string_quotes=True,
    explicit_blocks=False,
    with_comments=False,
    preserve_heredocs=False,
)

Block = dict[str, Any]


@dataclass(frozen=True)
class Config:
    """Every top-level construct of terraform/*.tf, merged across files."""

    locals: dict[str, Any]
    variables: dict[str, Block]
    resources: dict[str, dict[str, Block]]
    data: dict[str, dict[str, Block]]
    files: dict[str, str]

    def resource(self, rtype: str, name: str) -> Block:
        assert name in self.resources.get(rtype, {}), f"terraform declares no {rtype}.{name}"
        return self.resources[rtype][name]

    def of_type(self, rtype: str) -> dict[str, Block]:
        return self.resources.get(rtype, {})


@cache
def config() -> Config:
    locals_: dict[str, Any] = {}
    variables: dict[str, Block] = {}
    resources: dict[str, dict[str, Block]] = {}
    data: dict[str, dict[str, Block]] = {}
    files: dict[str, str] = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        files[path.name] = path.read_text()
        with path.open() as handle:
            doc = hcl2.load(handle, serialization_options=_OPTIONS)
        for block in doc.get("locals", []):
            for key, value in block.items():
                assert key not in locals_, f"local.{key} is declared twice"
                locals_[key] = value
        for block in doc.get("variable", []):
            variables.update(block)
        for kind, target in (("resource", resources), ("data", data)):
            for block in doc.get(kind, []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        assert name not in target.setdefault(rtype, {}), f"{rtype}.{name} twice"
                        target[rtype][name] = body
    return Config(locals_, variables, resources, data, files)


def first(value: Any) -> Block:
    """A nested block as python-hcl2 gives it (a list of one dict) -> the dict."""
    if isinstance(value, list):
        assert len(value) == 1, f"expected one block, got {len(value)}"
        value = value[0]
    assert isinstance(value, dict), f"expected a block, got {value!r}"
    return value


def blocks(body: Block, name: str) -> list[Block]:
    """Static blocks `name { ... }` plus the content of `dynamic "name" { ... }` blocks."""
    found: list[Block] = list(body.get(name, []))
    for dynamic in body.get("dynamic", []):
        if name in dynamic:
            spec = dynamic[name]
            content = dict(first(spec["content"]))
            content["__dynamic_for_each__"] = spec["for_each"]
            found.append(content)
    return found


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, value) pair of a nested structure."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")
    else:
        yield path, value


# --- The functions map ---------------------------------------------------------------------------


def deployed_name(directory: str) -> str:
    return directory.replace("_", "-")


def function_dirs() -> dict[str, Path]:
    """Deployed name -> functions/<dir>/main.py, for every function directory in the repo."""
    if not FUNCTIONS.is_dir():
        return {}
    return {deployed_name(p.parent.name): p for p in sorted(FUNCTIONS.glob("*/main.py"))}


def declared_functions() -> dict[str, dict[str, Any]]:
    """local.functions as Terraform computes it: merge(local.function_defaults, spec)."""
    cfg = config()
    defaults = cfg.locals["function_defaults"]
    specs = cfg.locals["function_specs"]
    assert isinstance(specs, dict) and isinstance(defaults, dict)
    unknown = {f"{name}.{key}" for name, spec in specs.items() for key in spec if key not in defaults}
    assert not unknown, f"keys not in local.function_defaults (typo?): {sorted(unknown)}"
    return {name: {**defaults, **spec} for name, spec in specs.items()}


def trigger_topic(main_py: Path) -> str | None:
    """The module-level `TRIGGER_TOPIC = "..."` of a function's main.py, read with ast."""
    tree = ast.parse(main_py.read_text(), filename=str(main_py))
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if isinstance(target, ast.Name) and target.id == "TRIGGER_TOPIC":
                assert isinstance(value, ast.Constant) and isinstance(value.value, str), (
                    f"{main_py}: TRIGGER_TOPIC must be a string literal"
                )
                return value.value
    return None


def test_every_function_directory_is_declared_and_every_declared_function_exists() -> None:
    on_disk = set(function_dirs())
    declared = set(declared_functions())
    missing = on_disk - declared
    orphans = declared - on_disk
    assert not missing, (
        f"functions/ has {sorted(missing)} but terraform/functions.tf local.function_specs does not "
        "declare them: add an entry (deployed name = directory name with '_' -> '-')"
    )
    assert not orphans, f"terraform declares {sorted(orphans)} but functions/<dir>/main.py does not exist"


def test_function_names_are_valid_and_entry_point_is_the_directory_name() -> None:
    for name in declared_functions():
        assert re.fullmatch(r"[a-z][a-z0-9-]{0,48}[a-z0-9]", name), f"invalid function name {name!r}"
    fn = config().resource("google_cloudfunctions2_function", "fn")
    assert fn["for_each"] == "${local.functions}"
    assert fn["name"] == "${each.key}"
    assert first(fn["build_config"])["entry_point"] == '${replace(each.key, "-", "_")}'
    assert config().locals["functions"] == (
        "${{for name, spec in local.function_specs : name => merge(local.function_defaults, spec)}}"
    )


def test_function_kinds_are_consistent() -> None:
    for name, f in declared_functions().items():
        assert f["trigger"] in {"http", "pubsub"}, f"{name}: trigger must be http or pubsub"
        if f["trigger"] == "pubsub":
            assert f["topic"], f"{name}: an event function needs its topic"
            assert f["public"] is False, f"{name}: event functions are never public"
            assert f["schedule"] is None, f"{name}: only HTTP functions are scheduled"
        else:
            assert f["topic"] is None, f"{name}: an HTTP function has no trigger topic"
            if f["schedule"] is not None:
                assert f["public"] is False, f"{name}: a scheduled function is internal, not public"
            if not f["public"]:
                assert f["schedule"], f"{name}: a non-public HTTP function must be called by something"


def test_event_trigger_topics_match_the_code() -> None:
    declared = declared_functions()
    for name, main_py in function_dirs().items():
        if name not in declared:
            continue  # reported by the declaration test
        topic = trigger_topic(main_py)
        spec = declared[name]
        if topic is None:
            assert spec["trigger"] == "http", (
                f"{name}: no TRIGGER_TOPIC in {main_py}, yet declared as an event function"
            )
        else:
            assert spec["trigger"] == "pubsub", f"{name}: main.py has TRIGGER_TOPIC but terraform declares HTTP"
            assert spec["topic"] == topic, f"{name}: terraform topic {spec['topic']!r} != TRIGGER_TOPIC {topic!r}"
    fn = config().resource("google_cloudfunctions2_function", "fn")
    (trigger,) = blocks(fn, "event_trigger")
    # Event functions with `dead_letter_after` are pushed to by a subscription of pubsub.tf instead.
    assert trigger["__dynamic_for_each__"] == (
        '${each.value.trigger == "pubsub" && each.value.dead_letter_after == null ? [each.value.topic] : []}'
    )
    assert trigger["pubsub_topic"] == "${google_pubsub_topic.app[event_trigger.value].id}"
    assert trigger["event_type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    topics = config().locals["topics"]
    assert "[for f in local.event_functions : f.topic]" in topics, "every trigger topic must be declared"


# --- Identities ----------------------------------------------------------------------------------


def test_every_function_runs_as_its_own_service_account() -> None:
    cfg = config()
    sa = cfg.resource("google_service_account", "fn")
    assert sa["for_each"] == "${local.functions}"
    assert "${each.key}" in sa["account_id"]
    service = first(cfg.resource("google_cloudfunctions2_function", "fn")["service_config"])
    assert service["service_account_email"] == "${google_service_account.fn[each.key].email}"
    ids = [f"fn-{name}"[:30] for name in declared_functions()]
    assert len(set(ids)) == len(ids), "two functions would share a service account id"
    for account_id in ids:
        assert 6 <= len(account_id) <= 30, f"service account id {account_id!r} must be 6-30 characters"


def test_roles_are_granted_per_function_and_never_broad() -> None:
    forbidden = {"roles/owner", "roles/editor", "roles/viewer", "roles/iam.serviceAccountUser"}
    for name, f in declared_functions().items():
        for role in f["roles"]:
            assert role.startswith("roles/"), f"{name}: {role!r}"
            assert role not in forbidden, f"{name}: {role} is not least privilege"
            assert not role.endswith(".admin") or role == "roles/firebaseauth.admin", f"{name}: {role}"
    member = config().resource("google_project_iam_member", "fn")
    assert member["for_each"] == "${local.function_roles}"
    assert member["member"] == "serviceAccount:${google_service_account.fn[each.value.function].email}"
    for rtype in ("google_project_iam_binding", "google_project_iam_policy"):
        assert not config().of_type(rtype), f"{rtype} is authoritative and would drop other grants"


def test_secret_access_is_per_secret_and_per_function() -> None:
    grant = config().resource("google_secret_manager_secret_iam_member", "fn")
    assert grant["for_each"] == "${local.function_secrets}"
    assert grant["secret_id"] == "${google_secret_manager_secret.app[each.value.secret].id}"
    assert grant["role"] == "roles/secretmanager.secretAccessor"
    assert grant["member"] == "serviceAccount:${google_service_account.fn[each.value.function].email}"


@pytest.mark.policy("P5")
def test_only_public_http_functions_are_public_and_only_through_the_load_balancer() -> None:
    cfg = config()
    service = first(cfg.resource("google_cloudfunctions2_function", "fn")["service_config"])
    assert service["ingress_settings"] == (
        '${each.value.trigger == "http" && each.value.public ? "ALLOW_INTERNAL_AND_GCLB" : "ALLOW_INTERNAL_ONLY"}'
    )
    public = [
        (rtype, name, body)
        for rtype, named in cfg.resources.items()
        for name, body in named.items()
        if body.get("member") == "allUsers" or "allUsers" in body.get("members", [])
    ]
    assert [(r, n) for r, n, _ in public] == [("google_cloud_run_v2_service_iam_member", "public_invoker")]
    assert public[0][2]["for_each"] == "${local.public_functions}"
    for rtype in ("google_cloudfunctions2_function_iam_member", "google_cloudfunctions2_function_iam_binding"):
        for body in cfg.of_type(rtype).values():
            assert "allUsers" not in str(body)
    invoker = cfg.resource("google_cloud_run_v2_service_iam_member", "pubsub_invoker")
    assert invoker["for_each"] == "${local.event_functions}"


# --- Source archive ------------------------------------------------------------------------------


def test_source_object_is_named_by_the_archive_hash() -> None:
    cfg = config()
    obj = cfg.resource("google_storage_bucket_object", "source")
    assert re.search(r"\$\{data\.archive_file\.source\.output_(md5|sha|sha256|base64sha256)\}", obj["name"]), obj[
        "name"
    ]
    assert obj["source"] == "${data.archive_file.source.output_path}"
    storage = first(
        first(first(cfg.resource("google_cloudfunctions2_function", "fn")["build_config"])["source"])["storage_source"]
    )
    assert storage["object"] == "${google_storage_bucket_object.source.name}"
    archive = cfg.data["archive_file"]["source"]
    assert archive["source_dir"] == "${path.module}/.."
    excluded = set(archive["excludes"])
    for path in (".venv", "node_modules", "tests", "terraform", ".git", ".local", "bench", "devstack"):
        assert path in excluded, f"{path} must not be deployed"
    for needed in ("main.py", "requirements.txt", "shared", "functions"):
        assert needed not in excluded, f"{needed} is runtime code"


# --- Firestore -----------------------------------------------------------------------------------

# Every TTL the data map promises (shared/datamap.py) must exist as a Firestore TTL policy.
TTL_FIELDS = {(place.collection, place.ttl_field) for place in (*datamap.FIRESTORE, *datamap.SYSTEM) if place.ttl_field}


@pytest.mark.policy("P27")
def test_ttl_policies_are_declared() -> None:
    cfg = config()
    declared: set[tuple[str, str]] = set()
    for body in cfg.of_type("google_firestore_field").values():
        if "ttl_config" not in body:
            continue
        if body.get("for_each") == "${local.firestore_ttl_fields}":
            assert body["collection"] == "${each.value.collection}" and body["field"] == "${each.value.field}"
            for entry in cfg.locals["firestore_ttl_fields"].values():
                declared.add((entry["collection"], entry["field"]))
        else:
            declared.add((body["collection"], body["field"]))
    assert declared >= TTL_FIELDS, f"missing TTL policies: {sorted(TTL_FIELDS - declared)}"


def test_firestore_is_native_protected_recoverable_and_in_the_eu() -> None:
    cfg = config()
    db = cfg.resource("google_firestore_database", "default")
    assert db["name"] == "(default)"
    assert db["type"] == "FIRESTORE_NATIVE"
    assert db["delete_protection_state"] == "DELETE_PROTECTION_ENABLED"
    assert "POINT_IN_TIME_RECOVERY_ENABLED" in db["point_in_time_recovery_enablement"]
    assert cfg.variables["firestore_point_in_time_recovery"]["default"] is True
    assert db["location_id"] == "${var.firestore_location}"
    default = cfg.variables["firestore_location"]["default"]
    assert default == "eur3" or default.startswith("europe-"), "Firestore stays in the EU"


def test_composite_indexes_are_declared() -> None:
    cfg = config()
    index = cfg.resource("google_firestore_index", "composite")
    assert index["for_each"] == "${local.firestore_composite_indexes}"
    declared = {
        (entry["collection"], tuple((f["field_path"], f["order"]) for f in entry["fields"]))
        for entry in cfg.locals["firestore_composite_indexes"].values()
    }
    assert ("sessions", (("account_id", "ASCENDING"), ("created_at", "DESCENDING"))) in declared
    assert ("security_events", (("account_id", "ASCENDING"), ("at", "DESCENDING"))) in declared


# --- Load balancer, HTTPS, Cloud Armor -----------------------------------------------------------


def rendered(template: str, key: str, iterator: str) -> str:
    return template.replace(f"${{{iterator}.key}}", key)


def test_every_public_http_function_has_a_route() -> None:
    cfg = config()
    url_map = cfg.resource("google_compute_url_map", "https")
    matcher = first(url_map["path_matcher"])
    rules = blocks(matcher, "path_rule")
    routes: dict[str, set[str]] = {}
    for rule in rules:
        if "__dynamic_for_each__" in rule:
            assert rule["__dynamic_for_each__"] == "${local.public_functions}"
            assert rule["service"] == "${google_compute_backend_service.fn[path_rule.key].id}"
            for name in declared_functions():
                routes.setdefault(name, set()).update(rendered(p, name, "path_rule") for p in rule["paths"])
        else:
            for path in rule["paths"]:
                routes.setdefault(path.strip("/").split("/")[0], set()).add(path)
    for name, f in declared_functions().items():
        if f["trigger"] == "http" and f["public"]:
            assert {f"/{name}", f"/{name}/*"} <= routes.get(name, set()), f"no route /{name}/* in the URL map"
    neg = cfg.resource("google_compute_region_network_endpoint_group", "fn")
    assert neg["for_each"] == "${local.public_functions}" and neg["network_endpoint_type"] == "SERVERLESS"
    backend = cfg.resource("google_compute_backend_service", "fn")
    assert backend["for_each"] == "${local.public_functions}"
    assert backend["security_policy"] == "${google_compute_security_policy.fn[each.key].id}"
    assert "path_prefix_rewrite" not in str(url_map), "the full path is forwarded, never rewritten"


@pytest.mark.policy("P5")
def test_https_with_managed_certificate_and_http_redirects_to_https() -> None:
    cfg = config()
    cert = cfg.resource("google_compute_managed_ssl_certificate", "api")
    assert first(cert["managed"])["domains"] == ["${var.domain}"]
    proxy = cfg.resource("google_compute_target_https_proxy", "api")
    assert proxy["ssl_certificates"] == ["${google_compute_managed_ssl_certificate.api.id}"]
    assert proxy["url_map"] == "${google_compute_url_map.https.id}"
    policy = cfg.resource("google_compute_ssl_policy", proxy["ssl_policy"].split(".")[1])
    assert policy["min_tls_version"] in {"TLS_1_2", "TLS_1_3"}
    rules = cfg.of_type("google_compute_global_forwarding_rule")
    by_port = {rule["port_range"]: rule for rule in rules.values()}
    assert set(by_port) == {"443", "80"}, "only 443 (HTTPS) and 80 (redirect) are exposed"
    assert by_port["443"]["target"] == "${google_compute_target_https_proxy.api.id}"
    http_proxy_name = by_port["80"]["target"].split(".")[1]
    http_proxy = cfg.resource("google_compute_target_http_proxy", http_proxy_name)
    redirect_map = cfg.resource("google_compute_url_map", http_proxy["url_map"].split(".")[1])
    redirect = first(redirect_map["default_url_redirect"])
    assert redirect["https_redirect"] is True
    assert "default_service" not in redirect_map and "path_matcher" not in redirect_map, "port 80 serves nothing"


def armor_rate_rules() -> list[tuple[str, str]]:
    """(function key, rendered CEL expression) of every rate-limiting rule of every policy."""
    cfg = config()
    found: list[tuple[str, str]] = []
    limits = cfg.locals.get("armor_rate_limits", {})
    for body in cfg.of_type("google_compute_security_policy").values():
        for rule in blocks(body, "rule"):
            if rule["action"] not in {"throttle", "rate_based_ban"}:
                continue
            expression = first(first(rule["match"])["expr"])["expression"]
            if "__dynamic_for_each__" in rule:
                assert "local.armor_rate_limits" in rule["__dynamic_for_each__"]
                found.extend((key, rendered(expression, key, "rule")) for key in limits)
            else:
                found.append(("", expression))
    return found


def cel_path_matches(expression: str, path: str) -> bool:
    """Evaluate the path predicates our rules use: ==, startsWith, matches, joined by ||."""
    for clause in (c.strip() for c in expression.split("||")):
        if m := re.fullmatch(r"request\.path == '([^']*)'", clause):
            if path == m.group(1):
                return True
        elif m := re.fullmatch(r"request\.path\.startsWith\('([^']*)'\)", clause):
            if path.startswith(m.group(1)):
                return True
        elif m := re.fullmatch(r"request\.path\.matches\('([^']*)'\)", clause):
            if re.search(m.group(1), path):
                return True
        else:
            raise AssertionError(f"cannot evaluate Cloud Armor clause {clause!r}: keep rate rules to path tests")
    return False


@pytest.mark.policy("P22")
def test_cloud_armor_rate_limits_auth_and_never_the_stripe_webhook() -> None:
    cfg = config()
    rules = armor_rate_rules()
    auth_rules = [expr for _, expr in rules if cel_path_matches(expr, "/auth/signin")]
    assert auth_rules, "no Cloud Armor rate rule covers /auth/*"
    assert all(cel_path_matches(expr, "/auth/password/forgot") for expr in auth_rules)
    for _, expr in rules:
        for path in ("/stripe-webhook", "/stripe-webhook/", "/stripe-webhook/events"):
            assert not cel_path_matches(expr, path), f"rate rule {expr!r} would drop Stripe retries on {path}"
        assert not cel_path_matches(expr, "/authx"), f"rate rule {expr!r} leaks onto another function's path"
    assert "stripe-webhook" not in cfg.locals.get("armor_rate_limits", {})
    auth = cfg.locals["armor_rate_limits"]["auth"]
    for key in ("count", "interval_sec", "ban_count", "ban_interval_sec", "ban_duration_sec"):
        assert str(auth[key]).startswith("${var."), f"armor_rate_limits.auth.{key} must come from a variable"
    policy = cfg.resource("google_compute_security_policy", "fn")
    assert policy["for_each"] == "${local.public_functions}", "one policy per public function"


# --- Secrets -------------------------------------------------------------------------------------


def test_secret_environment_variables_refer_to_declared_secrets() -> None:
    cfg = config()
    declared = set(cfg.locals["secret_env_vars"])
    secret = cfg.resource("google_secret_manager_secret", "app")
    assert secret["for_each"] == "${toset(local.secret_env_vars)}"
    for name, f in declared_functions().items():
        unknown = set(f["secrets"]) - declared
        assert not unknown, f"{name} uses undeclared secrets {sorted(unknown)}"
    for rtype, named in cfg.resources.items():
        for rname, body in named.items():
            for path, value in walk(body):
                if ".secret_environment_variables" in f".{path}" and path.endswith(".secret"):
                    assert re.fullmatch(r"\$\{google_secret_manager_secret\.\w+\[[^\]]+\]\.secret_id\}", value), (
                        f"{rtype}.{rname}.{path} = {value!r} is not a declared secret"
                    )
    service = first(cfg.resource("google_cloudfunctions2_function", "fn")["service_config"])
    (sev,) = blocks(service, "secret_environment_variables")
    assert sev["__dynamic_for_each__"] == "${toset(each.value.secrets)}"
    assert sev["secret"] == "${google_secret_manager_secret.app[secret_environment_variables.value].secret_id}"
    env = cfg.locals["common_env"]
    assert not declared & set(env), "a secret must never be a plain environment variable"


def test_no_secret_value_in_terraform() -> None:
    cfg = config()
    assert not cfg.of_type("google_secret_manager_secret_version"), "secret values are added out of band"
    secret_key = re.compile(
        r"(?i)pass(word|wd)?|secret|token|pepper|credential|private_?key|api_?key|"
        r"(signing|encryption|access|webhook)_?key|^key$"
    )
    secret_value = re.compile(r"sk_(live|test)_|whsec_|rk_live_|AIza[0-9A-Za-z_-]{20}|-----BEGIN|xox[bp]-")

    def suspicious(path: str, value: Any) -> bool:
        """A literal, non-empty string held directly under a secret-sounding key (list items are names)."""
        last = path.rsplit(".", 1)[-1]
        if last.endswith("]") or not isinstance(value, str) or not value or "${" in value:
            return False
        return bool(secret_key.search(last))

    suspects: list[str] = []
    for name, body in cfg.variables.items():
        if "default" in body:
            suspects += [f"var.{p} = {v!r}" for p, v in walk({name: body["default"]}) if suspicious(p, v)]
    suspects += [f"local.{p} = {v!r}" for p, v in walk(cfg.locals) if suspicious(p, v)]
    example = (TERRAFORM / "terraform.tfvars.example").read_text()
    for match in re.finditer(r"(?m)^\s*(\w+)\s*=\s*\"([^\"]*)\"", example):
        if suspicious(match.group(1), match.group(2)):
            suspects.append(f"terraform.tfvars.example {match.group(1)}")
    for fname, text in cfg.files.items():
        if m := secret_value.search(text):
            suspects.append(f"{fname}: {m.group(0)}...")
    assert not suspects, f"values that look like secrets: {suspects}"


# --- Region, APIs, monitoring --------------------------------------------------------------------


def test_region_defaults_to_the_eu() -> None:
    region = config().variables["region"]
    assert region["default"] == "europe-west1"


def test_required_apis_are_enabled() -> None:
    cfg = config()
    services = set(re.findall(r"[a-z0-9-]+\.googleapis\.com", cfg.locals["services"]))
    for api in (
        "cloudfunctions.googleapis.com",
        "run.googleapis.com",
        "cloudbuild.googleapis.com",
        "artifactregistry.googleapis.com",
        "eventarc.googleapis.com",
        "firestore.googleapis.com",
        "pubsub.googleapis.com",
        "cloudscheduler.googleapis.com",
        "secretmanager.googleapis.com",
        "compute.googleapis.com",
        "monitoring.googleapis.com",
        "logging.googleapis.com",
        "storage.googleapis.com",
    ):
        assert api in services, f"{api} is not enabled"


@pytest.mark.policy("P6")
def test_alerting_is_declared() -> None:
    cfg = config()
    channel = cfg.resource("google_monitoring_notification_channel", "email")
    assert channel["type"] == "email" and channel["labels"]["email_address"] == "${var.alert_email}"
    policies = cfg.of_type("google_monitoring_alert_policy")
    assert policies, "no alert policy"
    for name, policy in policies.items():
        assert policy["notification_channels"] == "${local.notification_channels}", f"{name} notifies nobody"
    filters = {name: first(first(p["conditions"])["condition_threshold"])["filter"] for name, p in policies.items()}
    assert any('response_code_class = "5xx"' in f for f in filters.values()), "no 5xx error-rate alert"
    metrics = cfg.of_type("google_logging_metric")
    alert_metrics = [m for m in metrics.values() if "jsonPayload.alert" in m["filter"]]
    assert alert_metrics and all("severity>=ERROR" in m["filter"] for m in alert_metrics)
    scheduler_metrics = [m for m in metrics.values() if "cloud_scheduler_job" in m["filter"]]
    assert scheduler_metrics, "no metric on failed Cloud Scheduler jobs"
    for metric_name, metric in metrics.items():
        ref = f"logging.googleapis.com/user/${{google_logging_metric.{metric_name}.name}}"
        assert any(ref in f for f in filters.values()), f"log metric {metric_name} ({metric['name']}) has no alert"
    uptime = cfg.resource("google_monitoring_uptime_check_config", "auth_health")
    check = first(uptime["http_check"])
    assert check["path"] == "/auth/health" and check["use_ssl"] is True
    assert first(uptime["monitored_resource"])["labels"]["host"] == "${var.domain}"
    assert any("uptime_check_id" in f for f in filters.values()), "the uptime check alerts nobody"


@pytest.mark.policy("P27")
def test_scheduled_functions_are_run_by_cloud_scheduler_with_oidc() -> None:
    cfg = config()
    job = cfg.resource("google_cloud_scheduler_job", "fn")
    assert job["for_each"] == "${local.scheduled_functions}"
    target = first(job["http_target"])
    assert "oidc_token" in target
    assert first(target["oidc_token"])["service_account_email"] == "${google_service_account.scheduler.email}"
    invoker = cfg.resource("google_cloud_run_v2_service_iam_member", "scheduler_invoker")
    assert invoker["for_each"] == "${local.scheduled_functions}"


# --- Formatting ----------------------------------------------------------------------------------


def test_terraform_fmt() -> None:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform binary not installed: `terraform fmt -check` not run")
    result = subprocess.run(
        [binary, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (
        f"terraform fmt -check failed; run `terraform fmt -recursive terraform/`\n{result.stdout}"
    )


@pytest.mark.policy("P11")
def test_the_deletion_mail_states_the_backup_window_that_terraform_configures() -> None:
    cfg = config()
    enablement = cfg.resource("google_firestore_database", "default")["point_in_time_recovery_enablement"]
    window = cfg.locals["common_env"]["BACKUP_WINDOW_DAYS"]
    # One variable decides both: the backups kept and what the deletion mail says of them.
    assert "var.firestore_point_in_time_recovery" in enablement and "var.firestore_point_in_time_recovery" in window
    assert '"7"' in window and '"0"' in window


# --- Mail outbox ---------------------------------------------------------------------------------

# Functions whose code sends mail (through shared.adapters.mail.OutboxMailer): each publishes to
# mail-outbox and none holds the SMTP password; the mailer function alone speaks SMTP.
MAIL_SENDERS = {"auth", "auth-worker", "billing", "stripe-webhook", "privacy", "admin", "privacy-worker"}


@pytest.mark.policy("P16", "P25")
def test_mail_goes_through_the_outbox_and_only_the_mailer_holds_smtp_credentials() -> None:
    functions = declared_functions()
    mailer = functions["mailer"]
    assert mailer["trigger"] == "pubsub" and mailer["topic"] == "mail-outbox" and mailer["public"] is False
    assert isinstance(mailer["dead_letter_after"], int) and 5 <= mailer["dead_letter_after"] <= 100
    # The SMTP password, and the key that signs the one-click unsubscribe link of marketing mail (P18).
    assert sorted(mailer["secrets"]) == ["SMTP_PASSWORD", "UNSUBSCRIBE_SIGNING_KEY"], mailer["secrets"]
    assert mailer["roles"] == ["roles/datastore.user"], "Firestore: the idempotency records of mail ids"
    assert not mailer["publishes"]
    for name, f in functions.items():
        if name in MAIL_SENDERS:
            assert "mail-outbox" in f["publishes"], f"{name} sends mail: it must publish to mail-outbox"
        if name != "mailer":
            assert "SMTP_PASSWORD" not in f["secrets"], f"{name} does not speak SMTP (the mailer does)"


@pytest.mark.policy("P24", "P27")
def test_every_queue_of_personal_data_in_the_data_map_is_a_topic_and_its_retention_holds() -> None:
    """The record of processing lists each Pub/Sub topic that carries personal data; terraform must make
    it (some function publishes to it, one consumes it and dead-letters it), and the data map's retention
    must cover the topic's retention plus the subscription's and the dead letter's (1 + 7 + 7 days)."""
    from shared import datamap

    functions = declared_functions()
    published = {t for f in functions.values() for t in f["publishes"]}
    consumers = {f["topic"]: f for f in functions.values() if f["trigger"] == "pubsub"}
    for queue in datamap.QUEUES:
        assert queue.topic in published, f"{queue.topic}: in the data map, but no function publishes to it"
        assert queue.topic in consumers and consumers[queue.topic]["dead_letter_after"], queue.topic
        assert queue.retention.days >= 1 + 7 + 7, f"{queue.topic}: the data map understates its retention"


# --- The retention sweep on Cloud Scheduler (P27) -------------------------------------------------


@pytest.mark.policy("P27")
def test_the_retention_sweep_runs_daily_in_paris_time_with_least_privilege() -> None:
    cfg = config()
    sweep = declared_functions()["retention-sweep"]
    assert sweep["public"] is False and sweep["trigger"] == "http"
    assert re.fullmatch(r"\d+ \d+ \* \* \*", sweep["schedule"]), "daily"
    assert sweep["time_zone"] == "Europe/Paris"
    assert sweep["secrets"] == [] and sweep["roles"] == ["roles/datastore.user"]
    assert sorted(sweep["publishes"]) == ["mail-outbox", "privacy-jobs"]
    job = cfg.resource("google_cloud_scheduler_job", "fn")
    assert job["time_zone"] == "${each.value.time_zone}"
    target = first(job["http_target"])
    assert first(target["oidc_token"])["service_account_email"] == "${google_service_account.scheduler.email}"
    role = cfg.resource("google_project_iam_custom_role", "retention_object_deleter")
    assert sorted(role["permissions"]) == ["storage.objects.delete", "storage.objects.list"]
    grants = {
        m["bucket"]
        for m in cfg.of_type("google_storage_bucket_iam_member").values()
        if "retention-sweep" in m["member"]
    }
    assert grants == {"${google_storage_bucket.exports.name}", "${google_storage_bucket.telemetry_archive.name}"}


@pytest.mark.policy("P27")
def test_no_purge_date_field_the_sweep_queries_is_exempted_from_indexing() -> None:
    swept = {(p.collection, p.ttl_field) for p in (*datamap.FIRESTORE, *datamap.SYSTEM) if p.ttl_field}
    swept |= {("accounts", "purge_at"), ("accounts", "purge_warning_at"), ("privacy_requests", "completed_at")}
    for name, field in config().of_type("google_firestore_field").items():
        if (field.get("collection"), field.get("field")) in swept:
            assert "index_config" not in field, f"{name}: the sweep's range query needs this field indexed"
