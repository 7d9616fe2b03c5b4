"""Run profiles (*.toml). Edited here; shipped in the wheel as the package data `harness.profiles`, which
`harness.model.profile.DEFAULT_PROFILES_DIR` finds with importlib.resources (this file makes the folder a package
an editable install can map)."""
