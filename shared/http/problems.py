"""RFC 9457 problem details: every error this backend answers is `application/problem+json`.

`type` is a stable URI per kind of problem, so clients branch on it, never on the English title.
It is a page of this API, `{PUBLIC_BASE_URL}/problems/<slug>` (served by the api-docs function from
`PROBLEM_TYPES` below): every slug raised anywhere must have an entry there (tests/unit/test_openapi.py
fails otherwise, naming the slug and where it is raised).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The base when no settings are at hand; HttpApp answers with `problem_base(PUBLIC_BASE_URL)`.
PROBLEM_BASE = "https://wizyvision.com/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_base(public_base_url: str) -> str:
    """`https://api.example.com` -> `https://api.example.com/problems/`."""
    return public_base_url.rstrip("/") + "/problems/"


class Problem(Exception):
    """Raise anywhere below an entry point; the HTTP app turns it into a problem+json answer."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(f"{status} {slug}: {detail or title}")
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def body(self, instance: str | None = None, base: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": (base or PROBLEM_BASE) + self.slug,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            doc["detail"] = self.detail
        if instance:
            doc["instance"] = instance
        doc.update(self.extensions)
        return doc


def bad_request(slug: str, detail: str, **ext: Any) -> Problem:
    return Problem(400, slug, "Bad request", detail, **ext)


def unauthorized(detail: str = "A valid session token is required.", slug: str = "unauthenticated") -> Problem:
    return Problem(
        401,
        slug,
        "Unauthenticated",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="wizyvision"'},
    )


def forbidden(slug: str, detail: str) -> Problem:
    return Problem(403, slug, "Forbidden", detail)


def not_found(detail: str = "No such resource.") -> Problem:
    return Problem(404, "not-found", "Not found", detail)


def conflict(slug: str, detail: str) -> Problem:
    return Problem(409, slug, "Conflict", detail)


def unavailable(slug: str, detail: str, retry_after: int = 30) -> Problem:
    return Problem(
        503,
        slug,
        "Service unavailable",
        detail,
        headers={"Retry-After": str(retry_after)},
    )


# --- The registry of problem types: what each `type` URI's page says ----------------------------------


@dataclass(frozen=True)
class ProblemType:
    slug: str
    title: str
    statuses: tuple[int, ...]
    explanation: str  # what happened, one paragraph
    action: str  # what the client should do


def _types(*entries: ProblemType) -> dict[str, ProblemType]:
    return {entry.slug: entry for entry in entries}


_RETRY = "Wait for the number of seconds in `Retry-After` (or a few seconds), then send the same request again."
_FIX = "Correct the request as `errors` or `detail` say and send it again; repeating it unchanged fails the same way."
_SIGNIN = "Sign in again (POST /auth/signin or /auth/google) and send the new session token as `Authorization: Bearer`."

PROBLEM_TYPES: dict[str, ProblemType] = _types(
    # -- every function: the HTTP layer (shared/http/app.py) --------------------------------------------------------
    ProblemType(
        "malformed-json",
        "Malformed JSON",
        (400,),
        "The body is not a JSON object: it does not parse, is not UTF-8, is an array or a scalar, or nests arrays "
        "and objects more than 64 levels deep.",
        "Send one JSON object, UTF-8 encoded, with `Content-Type: application/json`.",
    ),
    ProblemType(
        "validation-error",
        "Invalid request body",
        (422,),
        "The body is valid JSON but a field is missing, unknown, of the wrong type or out of its range. `errors` "
        "lists each field (`field`, `message`, `code`); the value sent is never echoed back.",
        _FIX,
    ),
    ProblemType(
        "invalid-query",
        "Invalid query",
        (422,),
        "A query parameter is missing, unknown or out of range; `errors` names each one.",
        _FIX,
    ),
    ProblemType(
        "unsupported-media-type",
        "Unsupported media type",
        (415,),
        "The route takes a JSON body and the request's `Content-Type` is not `application/json` (or `+json`).",
        "Send the body as JSON with `Content-Type: application/json`.",
    ),
    ProblemType(
        "body-too-large",
        "Request body too large",
        (413,),
        "The body is larger than the route accepts (64 KiB unless the route says otherwise; `detail` gives the limit).",
        "Send a smaller body, or split a batch into several requests.",
    ),
    ProblemType(
        "not-found",
        "Not found",
        (404,),
        "No route serves this path, or the resource does not exist or belongs to another account (the API "
        "answers the same in both cases, so that it never confirms another account's data exists).",
        "Check the path and the id; do not retry unchanged.",
    ),
    ProblemType(
        "method-not-allowed",
        "Method not allowed",
        (405,),
        "The path exists but not with this method; the `Allow` header lists the methods it takes.",
        "Use one of the methods in `Allow`.",
    ),
    ProblemType(
        "unauthenticated",
        "Unauthenticated",
        (401,),
        "The route needs a session and the request has no valid session token: none was sent, it is unknown, "
        "revoked, or its account no longer exists.",
        _SIGNIN,
    ),
    ProblemType(
        "session-expired",
        "Session expired",
        (401,),
        "The session token was valid but its session ended: 30 minutes without use, or 12 hours after sign-in.",
        _SIGNIN,
    ),
    ProblemType(
        "role-required",
        "Forbidden",
        (403,),
        "The route is for staff: the signed-in account holds none of the roles it needs (`detail` names them). "
        "The refusal is written to the audit log.",
        "Ask an admin for the role if you need it; do not retry.",
    ),
    ProblemType(
        "https-required",
        "HTTPS required",
        (403,),
        "The API is served over HTTPS only and this request came over plain HTTP (P5).",
        "Send the request to the `https://` address.",
    ),
    ProblemType(
        "cors-origin-denied",
        "Origin not allowed",
        (403,),
        "A browser preflight (OPTIONS) came from an origin that is not allowed to call the API.",
        "Call the API from an allowed origin (the WizyVision web app), or from a server.",
    ),
    ProblemType(
        "internal",
        "Internal error",
        (500,),
        "The request could not be completed because of an error on our side; it is logged with its trace id.",
        "Retry later; if it persists, contact support with the time of the request.",
    ),
    # -- domain errors (shared/errors.py): a class's default slug --------------------------------------------------
    ProblemType(
        "domain-error",
        "Request refused",
        (400,),
        "A use case refused the request for a reason that has no more precise type.",
        "Read `detail`; correct the request before sending it again.",
    ),
    ProblemType(
        "forbidden",
        "Forbidden",
        (403,),
        "The caller is known but may not do this.",
        "Do not retry; `detail` says what is missing.",
    ),
    ProblemType(
        "conflict",
        "Conflict",
        (409,),
        "The resource's current state does not allow this request now.",
        "Read the resource again and act on its current state.",
    ),
    ProblemType(
        "gone",
        "Gone",
        (410,),
        "The resource existed and has been removed for good.",
        "Do not retry; create it again if the API allows it.",
    ),
    ProblemType(
        "unavailable",
        "Service unavailable",
        (503,),
        "A dependency (the database, mail, an identity provider) is unavailable, or the attempt could not be "
        "recorded; nothing was changed.",
        _RETRY,
    ),
    ProblemType(
        "too-many-attempts",
        "Too many attempts",
        (429,),
        "Too many failed attempts for this account or from this network: the key is locked with a growing "
        "backoff (1, 2, 4 ... 60 minutes), at most 100 failures an hour (P22). `retry_after` and `Retry-After` "
        "say how long.",
        "Wait `Retry-After` seconds before trying again; each further failure lengthens the lock.",
    ),
    # -- auth: sign-up, sign-in, links, passwords, second factor ---------------------------------------------------
    ProblemType(
        "invalid-credentials",
        "Sign-in failed",
        (401,),
        "The email, the password or the second factor is wrong. The answer never says which, so it cannot be "
        "used to find out whether an address has an account. Each failure counts towards the throttle.",
        "Ask the user to check what they typed, or to reset the password (POST /auth/password/forgot).",
    ),
    ProblemType(
        "email-not-verified",
        "Email not verified",
        (403,),
        "The account exists but its address was never confirmed, so it cannot sign in yet (P16).",
        "Open the link of the verification mail, or ask for a new one (POST /auth/verify-email/resend).",
    ),
    ProblemType(
        "invalid-token",
        "Invalid link",
        (400,),
        "The link or code is unknown, was already used, or is meant for something else. Links are single-use "
        "and a newer one replaces earlier ones.",
        "Ask for a new link (the newest mail's link is the only one that works).",
    ),
    ProblemType(
        "expired-token",
        "Expired link",
        (400,),
        "The link was valid but is older than its lifetime (one hour for verification and password-reset links).",
        "Ask for a new link and use it within the hour.",
    ),
    ProblemType(
        "weak-password",
        "Password refused",
        (422,),
        "The new password breaks the password rules: 12 to 128 characters, not one of the most common "
        "passwords, not the email address (P1). There are no composition rules.",
        "Choose a longer, less common password (a passphrase of several words works well).",
    ),
    ProblemType(
        "account-cancelled",
        "Account cancelled",
        (409,),
        "The account was cancelled and is waiting for its purge date (`purge_at`): it is kept until then, "
        "but nothing is processed for it but retention.",
        "Sign in again with `reactivate: true` to keep the account: the cancellation is called off.",
    ),
    ProblemType(
        "email-taken",
        "Address unavailable",
        (409,),
        "The address is used by another account, so this account cannot take it.",
        "Use another address, or sign in to the account that has it.",
    ),
    ProblemType(
        "invalid-current-password",
        "Not changed",
        (403,),
        "A sensitive change needs the current password and the one sent is wrong. It counts towards the throttle.",
        "Ask the user for their current password; after a reset link, use POST /auth/password/reset instead.",
    ),
    ProblemType(
        "reauthentication-required",
        "Re-authentication required",
        (403,),
        "A sensitive action (changing the email, asking for erasure...) needs proof that the account holder is "
        "present: the current password, or for a Google account a Google sign-in of the last few minutes.",
        "Send `current_password`, or sign in with Google again and repeat the request within the time `detail` gives.",
    ),
    ProblemType(
        "mfa-required",
        "Second factor required",
        (401,),
        "The password is right and the account has a second factor: the sign-in needs `totp_code` or "
        "`recovery_code` too (`mfa_required: true`).",
        "Ask the user for the code of their authenticator app (or a recovery code) and sign in again with it.",
    ),
    ProblemType(
        "invalid-mfa-code",
        "Second factor refused",
        (401,),
        "The authenticator code or recovery code is wrong, expired or already used. It counts towards the throttle.",
        "Ask for a fresh code (they change every 30 seconds) and try again.",
    ),
    ProblemType(
        "password-account-required",
        "Forbidden",
        (403,),
        "The action is for accounts that sign in with a password; a Google account's second factor is Google "
        "2-Step Verification.",
        "Manage the second factor in the Google account.",
    ),
    ProblemType(
        "totp-already-enabled",
        "Already enabled",
        (409,),
        "The account already has an authenticator second factor.",
        "Disable it first (POST /auth/mfa/totp/disable) to enrol a new one.",
    ),
    ProblemType(
        "totp-not-enrolled",
        "Not enrolled",
        (409,),
        "There is no pending enrolment to activate.",
        "Start with POST /auth/mfa/totp/enroll, then activate with a code from the app.",
    ),
    ProblemType(
        "reauthentication-mismatch",
        "Re-authentication required",
        (403,),
        "The Google sign-in sent to confirm a sensitive action is of another Google identity than the one linked "
        "to the account.",
        "Sign in again with the Google identity linked to this account and repeat the request.",
    ),
    ProblemType(
        "reauthentication-stale",
        "Re-authentication required",
        (403,),
        "The Google sign-in sent to confirm a sensitive action is not recent enough.",
        "Sign in with Google again and repeat the request right away.",
    ),
    ProblemType(
        "signup-password-mismatch",
        "Password does not match this sign-up",
        (401,),
        "Confirming a sign-up needs the password chosen when signing up with this link, and the one sent is "
        "another. It counts towards the throttle.",
        "Enter the password chosen at sign-up. If you did not sign up with this link, ignore it: use the link of "
        "your own sign-up, or reset your password.",
    ),
    ProblemType(
        "totp-not-enabled",
        "Conflict",
        (409,),
        "The account has no second factor to remove.",
        "Nothing to do; read the account again.",
    ),
    # -- Google sign-in ---------------------------------------------------------------------------------------------
    ProblemType(
        "invalid-google-token",
        "Google sign-in refused",
        (401,),
        "The Google ID token does not verify: bad signature, wrong issuer or audience, malformed (P2, P3).",
        "Get a fresh ID token from the Google sign-in of the app and send it once.",
    ),
    ProblemType(
        "google-token-expired",
        "Google sign-in refused",
        (401,),
        "The Google ID token has expired (they live one hour).",
        "Get a fresh ID token and sign in again.",
    ),
    ProblemType(
        "google-token-revoked",
        "Google sign-in refused",
        (401,),
        "The Google session behind the ID token was revoked.",
        "Sign in to Google again.",
    ),
    ProblemType(
        "google-email-unverified",
        "Google sign-in refused",
        (401,),
        "Google does not vouch for the address of this identity (`email_verified` is false).",
        "Verify the address with Google, or sign up with a password.",
    ),
    ProblemType(
        "google-provider-required",
        "Google sign-in refused",
        (401,),
        "The ID token was not issued by the Google provider.",
        "Sign in with Google.",
    ),
    ProblemType(
        "google-account-disabled",
        "Google sign-in refused",
        (401,),
        "The identity is disabled at the identity provider.",
        "Contact support.",
    ),
    ProblemType(
        "identity-conflict",
        "Account conflict",
        (409,),
        "The address belongs to an account linked to another Google identity.",
        "Sign in with the Google identity linked to the account, or contact support.",
    ),
    ProblemType(
        "identity-provider-unavailable",
        "Service unavailable",
        (503,),
        "Google sign-in could not be checked because the identity provider did not answer.",
        _RETRY,
    ),
    ProblemType(
        "payment-provider-unavailable",
        "Service unavailable",
        (503,),
        "The payment provider (Stripe) could not be reached or asked us to slow down; nothing was changed.",
        _RETRY,
    ),
    ProblemType(
        "queue-unavailable",
        "Service unavailable",
        (503,),
        "The request could not be queued for the worker that completes it; nothing was queued.",
        _RETRY,
    ),
    ProblemType(
        "mail-unavailable",
        "Service unavailable",
        (503,),
        "The mail that this request sends could not be handed to the mail relay.",
        _RETRY,
    ),
    # -- billing and the Stripe webhook ----------------------------------------------------------------------------
    ProblemType(
        "unknown-price",
        "Unknown price",
        (422,),
        "The price id is not in the plan catalogue.",
        "Use a price id of the current plans.",
    ),
    ProblemType(
        "already-subscribed",
        "Conflict",
        (409,),
        "The account already has an active subscription, so a new checkout would charge twice.",
        "Change or cancel the plan in the billing portal (POST /billing/portal).",
    ),
    ProblemType(
        "no-billing-account",
        "Conflict",
        (409,),
        "There is no Stripe customer for the account yet, so there is no portal to open.",
        "Subscribe first (POST /billing/checkout).",
    ),
    ProblemType(
        "invalid-signature",
        "Bad request",
        (400,),
        "The `Stripe-Signature` header is missing, does not match the raw body, is older than 300 seconds or "
        "was made with a secret this endpoint does not hold. Nothing was changed.",
        "Only Stripe calls this endpoint; check the endpoint's signing secret.",
    ),
    ProblemType(
        "event-in-progress",
        "Conflict",
        (409,),
        "Another delivery of the same Stripe event is being handled right now.",
        "Stripe retries by itself; retry after `Retry-After` seconds.",
    ),
    ProblemType(
        "dependency-unavailable",
        "Service unavailable",
        (503,),
        "Stripe or the database did not answer; the event was not stored.",
        "Stripe retries by itself for three days; otherwise retry after `Retry-After` seconds.",
    ),
    # -- data subject requests -------------------------------------------------------------------------------------
    ProblemType(
        "request-already-open",
        "Conflict",
        (409,),
        "A request of the same type (export or erasure) is already open for the account.",
        "Follow the open request (GET /privacy/requests) instead of asking again.",
    ),
    ProblemType(
        "not-cancellable",
        "Conflict",
        (409,),
        "Only an erasure still in its grace period can be cancelled; this one has started or has ended.",
        "Read the request's status (GET /privacy/requests/{id}).",
    ),
    ProblemType(
        "export-not-ready",
        "Conflict",
        (409,),
        "The export is still being prepared.",
        "Wait for the mail saying it is ready, then download it.",
    ),
    ProblemType(
        "export-expired",
        "Export expired",
        (410,),
        "Exports are deleted after 7 days.",
        "Ask for a new export (POST /privacy/requests with type export).",
    ),
    ProblemType(
        "not-retryable",
        "Conflict",
        (409,),
        "Only a request that needs attention can be retried; this one is in another state.",
        "Read the request's status first.",
    ),
    ProblemType(
        "unknown-role",
        "Unknown role",
        (422,),
        "A staff role must be one of admin, dpo, support.",
        "Send known roles only.",
    ),
    ProblemType(
        "last-admin",
        "Conflict",
        (409,),
        "Removing the role would leave no admin.",
        "Grant admin to someone else first.",
    ),
    # -- telemetry ---------------------------------------------------------------------------------------------------
    ProblemType(
        "site-required",
        "Site required",
        (422,),
        "Anonymous (web analytics) events must name the site that sends them.",
        "Send `site` in the batch.",
    ),
    ProblemType(
        "unknown-site",
        "Unknown site",
        (422,),
        "This site is not one that may send analytics here.",
        "Send from a configured site.",
    ),
    ProblemType(
        "telemetry-unavailable",
        "Service unavailable",
        (503,),
        "The events could not be queued; none of the batch was accepted.",
        _RETRY,
    ),
)


def problem_type(slug: str) -> ProblemType | None:
    return PROBLEM_TYPES.get(slug)
