"""Network profiles (*.toml). Edited here; shipped in the wheel as the package data `harness.netem`, which
`harness.network.profiles.NETEM_DIR` finds with importlib.resources (this file makes the folder a package an
editable install can map)."""
