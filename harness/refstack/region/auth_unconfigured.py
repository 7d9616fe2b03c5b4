"""GoTrue's endpoints for what this project has turned off, answered as GoTrue answers them then (never a bare 404
of our own): SAML SSO, the OAuth 2.1 server and its admin clients, custom OAuth providers, manual identity linking,
passkeys, SCIM, and sign-in with external OAuth providers (none configured). Also the two discovery routes GoTrue
always serves: /health and /.well-known/jwks.json (empty: HS256 secrets are never published).

    /sso, /sso/saml/*                          404 saml_provider_disabled   "SAML 2.0 is disabled"
    /admin/sso/providers                       200 {"items": []} (list); creating one: 404 saml_provider_disabled
    /oauth/*, /admin/oauth/clients*            404 feature_disabled         "OAuth server is disabled"
    /admin/custom-providers*                   404 feature_disabled         "Custom OAuth providers are disabled"
    /user/identities/*                         404 manual_linking_disabled  "Manual linking is disabled"
    /passkeys*                                 404 passkey_disabled         "Passkeys are disabled"
    /scim/v2/*                                 404 feature_disabled         "SCIM server is disabled"
    /authorize?provider=…                      400 validation_failed        "Unsupported provider: …"

Admin routes check the service-role bearer first, and /user/identities a signed-in user, as GoTrue's middleware
order does; /authorize and /callback are open at Supabase's gateway (no apikey), as here.
"""

from __future__ import annotations

from aiohttp import web

from harness.refstack.region.auth_common import Handler, caller_user, gotrue, json_body, require_admin
from harness.refstack.region.auth_errors import AuthError

OAUTH_PROVIDERS = frozenset(
    {
        *("apple", "azure", "bitbucket", "discord", "facebook", "figma", "fly", "github", "gitlab", "google"),
        *("kakao", "keycloak", "linkedin", "linkedin_oidc", "notion", "snapchat", "spotify", "slack", "slack_oidc"),
        *("twitch", "twitter", "x", "vercel_marketplace", "workos", "zoom"),
    }
)
"""The external providers GoTrue knows; all are off in this project."""
GOTRUE_VERSION = "v2.180.0"


def _disabled(status: int, code: str, message: str, *, admin: bool = False, user: bool = False) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if admin:
            require_admin(request)
        if user:
            await caller_user(request)
        raise AuthError(status, code, message)

    return handler


async def _authorize(request: web.Request) -> web.Response:
    """GoTrue's ExternalProviderRedirect with no provider configured."""
    name = request.query.get("provider", "").lower()
    reason = "provider is not enabled" if name in OAUTH_PROVIDERS else f"Provider {name} could not be found"
    if name.startswith("custom:"):
        reason = "custom OAuth providers are disabled"
    raise AuthError(400, "validation_failed", f"Unsupported provider: {reason}")


async def _sso_providers(request: web.Request) -> web.Response:
    require_admin(request)
    return json_body(request, {"items": []})


async def _audit(request: web.Request) -> web.Response:
    """GoTrue's admin audit log: this stand-in keeps none, so every page is empty."""
    require_admin(request)
    response = json_body(request, [])
    response.headers["X-Total-Count"] = "0"
    return response


async def _health(request: web.Request) -> web.Response:
    return json_body(
        request,
        {
            "version": GOTRUE_VERSION,
            "name": "GoTrue",
            "description": "GoTrue is a user registration and authentication API",
        },
    )


async def _jwks(request: web.Request) -> web.Response:
    """GoTrue's WellKnownJwks lists public keys only; the project signs with an HS256 secret, so there are none."""
    return json_body(request, {"keys": []})


def setup(app: web.Application) -> None:
    add = app.router
    saml = _disabled(404, "saml_provider_disabled", "SAML 2.0 is disabled")
    add.add_post("/auth/v1/sso", gotrue(saml))
    add.add_get("/auth/v1/sso/saml/metadata", gotrue(saml))
    add.add_post("/auth/v1/sso/saml/acs", gotrue(saml))
    add.add_get("/auth/v1/admin/sso/providers", gotrue(_sso_providers))
    add.add_post("/auth/v1/admin/sso/providers", gotrue(_disabled(404, *_SAML_OFF, admin=True)))  # stand-in
    for method in ("GET", "PUT", "DELETE"):
        add.add_route(
            method,
            "/auth/v1/admin/sso/providers/{idp_id}",
            gotrue(_disabled(404, "sso_provider_not_found", "SSO Identity Provider not found", admin=True)),
        )
    oauth_admin = gotrue(_disabled(404, "feature_disabled", "OAuth server is disabled", admin=True))
    add.add_route("*", "/auth/v1/admin/oauth/clients", oauth_admin)
    add.add_route("*", "/auth/v1/admin/oauth/clients/{client_id}", oauth_admin)
    add.add_route("*", "/auth/v1/admin/oauth/clients/{client_id}/regenerate_secret", oauth_admin)
    oauth = gotrue(_disabled(404, "feature_disabled", "OAuth server is disabled"))
    add.add_route("*", "/auth/v1/oauth/{tail:.*}", oauth)
    add.add_get("/auth/v1/.well-known/oauth-authorization-server", oauth)
    custom = gotrue(_disabled(404, "feature_disabled", "Custom OAuth providers are disabled", admin=True))
    add.add_route("*", "/auth/v1/admin/custom-providers", custom)
    add.add_route("*", "/auth/v1/admin/custom-providers/{identifier}", custom)
    linking = gotrue(_disabled(404, "manual_linking_disabled", "Manual linking is disabled", user=True))
    add.add_get("/auth/v1/user/identities/authorize", linking)
    add.add_delete("/auth/v1/user/identities/{identity_id}", linking)
    passkeys = gotrue(_disabled(404, "passkey_disabled", "Passkeys are disabled"))
    add.add_route("*", "/auth/v1/passkeys", passkeys)
    add.add_route("*", "/auth/v1/passkeys/{tail:.*}", passkeys)
    scim = gotrue(_disabled(404, "feature_disabled", "SCIM server is disabled"))
    add.add_route("*", "/auth/v1/scim/v2/{tail:.*}", scim)
    add.add_get("/auth/v1/authorize", gotrue(_authorize, key_auth=False))
    add.add_get("/auth/v1/admin/audit", gotrue(_audit))
    add.add_get("/auth/v1/health", gotrue(_health, key_auth=False))
    add.add_get("/auth/v1/.well-known/jwks.json", gotrue(_jwks, key_auth=False))


_SAML_OFF = ("saml_provider_disabled", "SAML 2.0 is disabled")
