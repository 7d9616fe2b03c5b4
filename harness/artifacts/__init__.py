"""Run artefacts away from the machine that made them: a run's reports uploaded to S3 and read back from there, so
a run on Kubernetes or in CI can be gated anywhere (docs/running.md, "Results in S3")."""
