"""Network conditions: calibrated profiles (netem/*.toml), their renderings (Toxiproxy toxics, tc netem, nftables +
tbf), kernel shaping in a namespace, the Toxiproxy client; `toxiproxy/` is the embedded Toxiproxy server."""
