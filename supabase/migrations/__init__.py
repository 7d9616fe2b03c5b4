"""The app's Supabase migrations, shipped in the wheel as harness.migrations (the default of --migrations).

This file only makes the folder a package for importlib.resources; `supabase db push` skips it (not a migration name).
"""
