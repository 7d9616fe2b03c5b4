"""The embedded reference stack: region servers (region/), the CloudFront + Lambda@Edge stand-in (edge/), the LiveKit
stand-in (livekit/), started together by stack.py. Imports nothing from clients/, scenarios/, loadgen/ or run/."""
