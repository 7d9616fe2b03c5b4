"""Beyond one machine: Kubernetes rendering and runs (docs/kubernetes.md) and the deployment gate. Sits above the
run (it runs profiles) and below the CLI; nothing under harness.run imports it."""
