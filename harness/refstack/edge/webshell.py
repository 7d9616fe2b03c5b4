"""The Flutter web shell the edge serves: generated once per process, precompressed, served with cache, encoding
and security headers.

`main.dart.js` is synthetic (about 2 MB of minified-Dart-like JavaScript from a fixed seed), so its size and
compression ratio resemble a real Flutter build while staying deterministic: same bytes, hashes and ETags on
every run.

    /  /index.html  /flutter_bootstrap.js  /manifest.json  /main.dart.js  → Cache-Control: no-cache (+ ETag)
    /assets/main.<hash>.js  /assets/fonts/<name>.<hash>.woff2             → public, max-age=31536000, immutable
    /some/app/route (no extension)                                         → index.html (the app's own router)
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass

import brotli
from aiohttp import web

MAIN_JS_BYTES = 2_000_000
"""Approximate size of the synthetic main.dart.js (a small Flutter app's release build is 1.5–3 MB)."""

FONT_BYTES = 64_000
"""Size of the synthetic woff2 font (incompressible, like real woff2)."""

BROTLI_QUALITY = 9
"""Precompression quality: 11 is what a build pipeline uses but costs seconds at startup; 9 is within a few %."""

GZIP_LEVEL = 9

CACHE_NO_CACHE = "no-cache"
CACHE_IMMUTABLE = "public, max-age=31536000, immutable"

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' https: wss:; media-src 'self' blob:; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
"""Strict but workable for Flutter web: CanvasKit needs 'wasm-unsafe-eval'; the engine injects inline styles;
the app talks to Supabase and LiveKit over https/wss (an operator can narrow connect-src to their own hosts)."""

SECURITY_HEADERS: Mapping[str, str] = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(self), microphone=(self), geolocation=()",
}
"""The deployment's promise ("security headers via CloudFront"), as a CloudFront response headers policy would
add them; Content-Security-Policy is added beside these."""

_COMPRESSIBLE = ("text/", "application/javascript", "application/json", "application/manifest+json", "image/svg")


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    cache_control: str
    etag: str
    gzip: bytes | None = None
    br: bytes | None = None


def _asset(body: bytes, content_type: str, cache_control: str) -> Asset:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if not content_type.startswith(_COMPRESSIBLE):
        return Asset(body, content_type, cache_control, etag)
    return Asset(
        body,
        content_type,
        cache_control,
        etag,
        gzip=gzip.compress(body, GZIP_LEVEL, mtime=0),
        br=brotli.compress(body, quality=BROTLI_QUALITY),
    )


def _content_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


def synthetic_main_js(size_bytes: int = MAIN_JS_BYTES, seed: int = 20240601) -> bytes:
    """Minified-Dart-like JavaScript: short identifiers reused often, the app's own strings, dart2js idioms."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    idents = [
        rng.choice(letters) + "".join(rng.choices(letters + "0123456789", k=rng.randint(0, 3))) for _ in range(900)
    ]
    words = [
        "messages",
        "conversations",
        "profiles",
        "members",
        "realtime",
        "presence",
        "broadcast",
        "postgres_changes",
        "livekit-token",
        "access_token",
        "refresh_token",
        "Authorization",
        "apikey",
        "phx_join",
        "phx_reply",
        "heartbeat",
        "TextStyle",
        "EdgeInsets",
        "BoxDecoration",
        "StatefulWidget",
        "setState",
        "didChangeDependencies",
        "Navigator",
        "MaterialApp",
        "Scaffold",
        "ListView",
        "ChatBubble",
        "sendMessage",
        "onMessage",
        "participant",
        "audioTrack",
        "videoTrack",
        "Room",
        "connect",
        "disconnect",
    ]
    templates = (
        "{a}.{b}.prototype={{$0({c},{d}){{var s,r=this,q=r.{e};if(q==null)return A.{f}({c});"
        's=q.{g}({d},"{w}");return new A.{h}(s,r.{i},B.{j})}},g{k}(){{return this.{l}}}}};\n',
        'A.{a}({b},{c}){{this.{d}={b};this.{e}={c};this.{f}=null;this.{g}="{w}"}};\n',
        '{a}:function({b}){{var s=A.{c}({b}.{d}),r=$.{e}();if(s.{f}<0)throw A.{g}(A.{h}("{w}"));'
        "return r.{i}(s,{b})}},\n",
        'B.{a}=new A.{b}("{w}",{n},{m});B.{c}=A.a([B.{d},B.{e},B.{f}],A.{g}("{h}<{w}>"));\n',
        'for({a}=0;{a}<{b}.length;++{a}){{{c}={b}[{a}];if({c}.{d}==={e})continue;{f}.push(A.{g}({c},"{w}"))}}\n',
    )
    out: list[str] = [
        "(function dartProgram(){function copyProperties(a,b){var s=Object.keys(a);"
        "for(var r=0;r<s.length;r++){var q=s[r];b[q]=a[q]}}\n"
    ]
    total = len(out[0])
    while total < size_bytes:
        names = {k: rng.choice(idents) for k in "abcdefghijkl"}
        line = rng.choice(templates).format(**names, w=rng.choice(words), n=rng.randint(0, 4096), m=rng.randint(0, 9))
        out.append(line)
        total += len(line)
    out.append("})();\n")
    return "".join(out).encode()[:size_bytes]


@dataclass(frozen=True)
class WebShell:
    assets: Mapping[str, Asset]
    main_js_path: str
    font_path: str

    @property
    def index(self) -> Asset:
        return self.assets["/index.html"]


@functools.lru_cache(maxsize=1)
def build_webshell() -> WebShell:
    """Generate and precompress every asset (about half a second, once per process)."""
    main_js = synthetic_main_js()
    font = random.Random(7).randbytes(FONT_BYTES)
    main_js_path = f"/assets/main.{_content_hash(main_js)}.js"
    font_path = f"/assets/fonts/Roboto-Regular.{_content_hash(font)}.woff2"
    bootstrap = (
        "// flutter_bootstrap.js (synthetic): loads the hashed bundle.\n"
        f'(function(){{var s=document.createElement("script");s.src="{main_js_path}";s.defer=true;'
        "document.body.appendChild(s)})();\n"
    ).encode()
    index = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="UTF-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">\n'
        "<title>WhatsApp Clone</title>\n"
        '<link rel="manifest" href="/manifest.json">\n'
        f'<link rel="preload" href="{font_path}" as="font" type="font/woff2" crossorigin>\n'
        f'<link rel="preload" href="{main_js_path}" as="script">\n'
        '</head>\n<body>\n<script src="/flutter_bootstrap.js" async></script>\n</body>\n</html>\n'
    ).encode()
    manifest = (
        b'{"name":"WhatsApp Clone","short_name":"Chat","start_url":".","display":"standalone",'
        b'"background_color":"#075E54","theme_color":"#075E54"}\n'
    )
    assets = {
        "/index.html": _asset(index, "text/html; charset=utf-8", CACHE_NO_CACHE),
        "/flutter_bootstrap.js": _asset(bootstrap, "application/javascript", CACHE_NO_CACHE),
        "/manifest.json": _asset(manifest, "application/manifest+json", CACHE_NO_CACHE),
        # Flutter's default un-hashed name: browsers revalidate it (ETag) on every load.
        "/main.dart.js": _asset(main_js, "application/javascript", CACHE_NO_CACHE),
        main_js_path: _asset(main_js, "application/javascript", CACHE_IMMUTABLE),
        font_path: _asset(font, "font/woff2", CACHE_IMMUTABLE),
    }
    return WebShell(assets=assets, main_js_path=main_js_path, font_path=font_path)


def choose_encoding(accept_encoding: str) -> str:
    """br > gzip > identity among what the client accepts (q=0 refuses; '*' accepts anything not named)."""
    accepted: dict[str, float] = {}
    for part in accept_encoding.split(","):
        token, _, params = part.strip().partition(";")
        token = token.strip().lower()
        if not token:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        accepted[token] = q
    for encoding in ("br", "gzip"):
        if accepted.get(encoding, accepted.get("*", 0.0)) > 0:
            return encoding
    return "identity"


def security_headers(csp: str) -> dict[str, str]:
    return {**SECURITY_HEADERS, "Content-Security-Policy": csp}


def serve(request: web.Request, shell: WebShell, extra_headers: Mapping[str, str]) -> web.Response:
    path = request.path
    if path == "/":
        path = "/index.html"
    asset = shell.assets.get(path)
    if asset is None:
        last = path.rsplit("/", 1)[-1]
        if "." in last:
            return web.Response(status=404, text="Not Found", headers=extra_headers)
        asset = shell.index  # a client-side route such as /chats/42: the app's router handles it
    headers = {
        **extra_headers,
        "Cache-Control": asset.cache_control,
        "ETag": asset.etag,
        "Content-Type": asset.content_type,
    }
    body = asset.body
    if asset.gzip is not None:
        headers["Vary"] = "Accept-Encoding"
        encoding = choose_encoding(request.headers.get("Accept-Encoding", ""))
        if encoding == "br" and asset.br is not None:
            body, headers["Content-Encoding"] = asset.br, "br"
        elif encoding == "gzip":
            body, headers["Content-Encoding"] = asset.gzip, "gzip"
        if encoding != "identity":
            # Each encoding is a different byte sequence, so it gets its own strong validator.
            headers["ETag"] = f'{asset.etag[:-1]}-{encoding}"'
    if asset.etag.strip('"') in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers={k: v for k, v in headers.items() if k != "Content-Type"})
    return web.Response(body=body, headers=headers)
