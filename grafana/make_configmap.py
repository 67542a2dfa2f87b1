# Writes docker/k8s/grafana-dashboard-configmap.yaml from grafana/dashboards/valet.json, for Grafana's dashboard
# sidecar; Tests/python/test_k8s_manifests.py fails if the two drift apart.
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = """# Grafana's dashboard sidecar (kube-prometheus-stack: grafana.sidecar.dashboards.enabled) loads every ConfigMap
# labelled grafana_dashboard: "1". The data is grafana/dashboards/valet.json verbatim; regenerate with
# `python3 grafana/make_configmap.py` (a test fails if they drift apart).
apiVersion: v1
kind: ConfigMap
metadata:
  name: valet-grafana-dashboard
  labels:
    app.kubernetes.io/name: valet
    grafana_dashboard: "1"
data:
  valet.json: |
"""


def main():
    dashboard = (ROOT / "grafana" / "dashboards" / "valet.json").read_text()
    body = "".join("    " + line if line.strip() else "\n" for line in dashboard.splitlines(keepends=True))
    (ROOT / "docker" / "k8s" / "grafana-dashboard-configmap.yaml").write_text(HEADER + body)


if __name__ == "__main__":
    main()
