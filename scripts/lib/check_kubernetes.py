"""Checks deploy/kubernetes beyond the schemas (scripts/check-deploy kubernetes): the
kustomization lists exactly the manifest files, and the manifests agree with each other
and with the ringkv binary. Run with the venv that has kubernetes-validate (PyYAML).

    python3 check_kubernetes.py DIR RINGKV_BIN

Prints one line per check; exits 1 naming every failed one.
"""

import pathlib
import re
import subprocess
import sys

import yaml

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def main():
    directory = pathlib.Path(sys.argv[1])
    ringkv = sys.argv[2]
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    files = sorted(p.name for p in directory.glob("*.yaml") if p.name != "kustomization.yaml")
    check(sorted(kustomization["resources"]) == files,
          f"kustomization resources {sorted(kustomization['resources'])} == files {files}")

    docs = []
    for name in files:
        docs.extend(d for d in yaml.safe_load_all((directory / name).read_text()) if d)
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    check(all(len(by_kind.get(k, [])) == n for k, n in
              [("StatefulSet", 1), ("Service", 2), ("PodDisruptionBudget", 1), ("Secret", 1)]),
          "one StatefulSet, two Services, one PodDisruptionBudget, one Secret")

    sts = by_kind["StatefulSet"][0]
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    container = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e for e in container.get("env", [])}

    check(spec["replicas"] == 3, "StatefulSet: 3 replicas")
    check(spec.get("podManagementPolicy") == "Parallel", "StatefulSet: podManagementPolicy Parallel")
    check(spec["selector"]["matchLabels"].items() <= labels.items(), "StatefulSet: selector matches the pod labels")
    required = pod.get("affinity", {}).get("podAntiAffinity", {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution", [])
    check(any(t.get("topologyKey") == "kubernetes.io/hostname"
              and t["labelSelector"]["matchLabels"].items() <= labels.items() for t in required),
          "StatefulSet: required pod anti-affinity per Kubernetes node")
    # Shutdown drains two request timeouts plus 2 s, then flushes the engine.
    check(pod.get("terminationGracePeriodSeconds", 30) >= 30, "StatefulSet: terminationGracePeriodSeconds >= 30")
    check(pod.get("securityContext", {}).get("runAsNonRoot") is True
          and pod["securityContext"].get("runAsUser", 0) != 0, "pod runs as a non-root user")
    claims = {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])}
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    data_dir = env.get("RINGKV_DATA_DIR", {}).get("value", "/data")
    check(any(mounts.get(c) == data_dir for c in claims),
          f"a PersistentVolumeClaim per pod mounted at the data dir {data_dir}")
    for probe, path in [("startupProbe", "/health/live"), ("livenessProbe", "/health/live"),
                        ("readinessProbe", "/health/ready")]:
        get = container.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path and get.get("port") in ports
              and env.get("RINGKV_HTTP", {}).get("value", "").endswith(f":{ports.get(get.get('port'))}"),
              f"{probe}: GET {path} on the container's HTTP port")
    for name, port in [("RINGKV_LISTEN", "peer"), ("RINGKV_RESP", "resp")]:
        check(env.get(name, {}).get("value", "").endswith(f":{ports.get(port)}"),
              f"{name} listens on the '{port}' container port")

    secrets = {s["metadata"]["name"]: set(s.get("stringData", {})) | set(s.get("data", {}))
               for s in by_kind["Secret"]}
    refs = [e["valueFrom"]["secretKeyRef"] for e in env.values() if "secretKeyRef" in e.get("valueFrom", {})]
    check({"RINGKV_CLUSTER_SECRET", "RINGKV_AUTH_TOKEN"} <= {n for n, e in env.items()
                                                           if "secretKeyRef" in e.get("valueFrom", {})},
          "cluster secret and client token come from a Secret")
    check(all(r["key"] in secrets.get(r["name"], set()) for r in refs), "every secretKeyRef names a key of the Secret")

    services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
    headless = services.get(spec["serviceName"], {}).get("spec", {})
    check(headless.get("clusterIP") == "None" and headless.get("publishNotReadyAddresses") is True,
          f"serviceName {spec['serviceName']} is headless and publishes not-ready pods")
    for name, service in services.items():
        check(service["spec"]["selector"].items() <= labels.items(), f"Service {name} selects the pods")
        check(all(p["targetPort"] in ports for p in service["spec"]["ports"]),
              f"Service {name}: every targetPort is a container port")
    check(any(s["spec"].get("clusterIP") != "None" for s in services.values()), "a client Service")

    pdb = by_kind["PodDisruptionBudget"][0]["spec"]
    check(pdb.get("maxUnavailable") == 1 and pdb["selector"]["matchLabels"].items() <= labels.items(),
          "PodDisruptionBudget: maxUnavailable 1 over the pods")

    args = container.get("args", [])
    seeds_dns = args[args.index("--seeds-dns") + 1] if "--seeds-dns" in args else ""
    check(seeds_dns.startswith(spec["serviceName"] + ".") and seeds_dns.endswith(f":{ports['peer']}"),
          f"--seeds-dns {seeds_dns} names the headless Service at the peer port")
    advertise = args[args.index("--advertise") + 1] if "--advertise" in args else ""
    check(advertise.startswith(f"$(POD_NAME).{spec['serviceName']}.") and advertise.endswith(f":{ports['peer']}"),
          f"--advertise {advertise} is the pod's DNS name at the peer port")
    check("--id-from-hostname" in args, "node id from the pod's ordinal")

    # The binary must know every flag and variable the manifest uses.
    help_text = subprocess.run([ringkv, "serve", "--help"], check=True, capture_output=True, text=True).stdout
    flags = [a for a in args if a.startswith("--")]
    unknown = [f for f in flags if not re.search(re.escape(f) + r"\b", help_text)]
    check(not unknown and args[0] == "serve", f"ringkv serve knows the flags {flags} (unknown: {unknown})")
    variables = [n for n in env if n.startswith("RINGKV_")]
    unknown = [v for v in variables if f"env: {v}" not in help_text and f"env: {v}=" not in help_text]
    check(not unknown, f"ringkv serve reads the variables {variables} (unknown: {unknown})")

    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)


main()
