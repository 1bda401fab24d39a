"""Routes of the admin function (staff signed in like users, with roles on their account)."""

from __future__ import annotations

from typing import Any

from functions.admin import schemas
from shared.bootstrap import cancellation_service, identity_service, privacy_service
from shared.http import Request, Router

router = Router()

PRIVACY_STAFF = ("dpo", "admin")


@router.get("/admin/health", response=schemas.HealthAnswer)
def health(_: Request) -> dict[str, str]:
    """Liveness: the function answers."""
    return {"status": "ok"}


@router.post(
    "/admin/privacy/erasures",
    body=schemas.DpoErasureBody,
    status=202,
    roles=PRIVACY_STAFF,
    response=schemas.ErasureReceipt,
    problems=(404,),
)
def start_erasure(req: Request, body: schemas.DpoErasureBody) -> dict[str, Any]:
    """Erase an account at once on request to the DPO (P28); the reason is kept in the audit log."""
    return privacy_service().start_dpo_erasure(req.principal.account.id, body.account_id, body.reason)


@router.get("/admin/privacy/requests", roles=PRIVACY_STAFF, response=schemas.OpenRequestsAnswer)
def open_requests(_: Request) -> dict[str, Any]:
    """Every open export and erasure request, the nearest due date first (P26)."""
    return {"requests": privacy_service().open_requests()}


@router.post(
    "/admin/privacy/requests/{request_id}/retry",
    body=schemas.RetryBody,
    status=202,
    roles=PRIVACY_STAFF,
    response=schemas.StaffRequestView,
    problems=(404, 409),
)
def retry_request(_: Request, body: schemas.RetryBody, request_id: str) -> dict[str, Any]:
    """Run the failed steps of a request that needs attention again (409 in any other status)."""
    return privacy_service().retry(request_id)


@router.get("/admin/privacy/deletion-records", roles=PRIVACY_STAFF, response=schemas.DeletionRecordsAnswer)
def deletion_records(_: Request) -> dict[str, Any]:
    """The proofs of erasure (P11), newest first."""
    return {"records": privacy_service().deletion_records()}


@router.get("/admin/privacy/records", roles=PRIVACY_STAFF, response=schemas.RecordOfProcessingAnswer)
def records_of_processing(_: Request) -> dict[str, Any]:
    """The record of processing activities (GDPR Art. 30), built from the data map."""
    return privacy_service().records_of_processing()


@router.put(
    "/admin/staff/{account_id}/roles",
    body=schemas.RolesBody,
    roles=("admin",),
    response=schemas.RolesAnswer,
    problems=(404, 409),
)
def set_roles(req: Request, body: schemas.RolesBody, account_id: str) -> dict[str, Any]:
    """Set an account's staff roles (admin only); 409 when it would leave no admin."""
    return privacy_service().set_roles(req.principal.account.id, account_id, list(body.roles), body.reason)


@router.post(
    "/admin/accounts/{account_id}/second-factor/remove",
    body=schemas.SecondFactorRemovalBody,
    roles=("support", "dpo", "admin"),
    response=schemas.SecondFactorRemovedAnswer,
    problems=(404, 409, 503),
)
def remove_second_factor(req: Request, body: schemas.SecondFactorRemovalBody, account_id: str) -> dict[str, Any]:
    """Support removes a holder's lost second factor (P25): sessions end, the holder is mailed, the call audited."""
    actor = f"staff:{req.principal.account.id}"
    return identity_service().credentials.remove_second_factor(account_id, actor, body.reason)


@router.post(
    "/admin/accounts/{account_id}/cancel",
    body=schemas.AccountCancelBody,
    roles=("support", "dpo", "admin"),
    response=schemas.AccountCancelledAnswer,
    problems=(404, 409, 503),
)
def cancel_account(req: Request, body: schemas.AccountCancelBody, account_id: str) -> dict[str, Any]:
    """Staff cancel an account (P19): sessions end, subscriptions stop renewing, the holder is mailed the purge date."""
    actor = f"staff:{req.principal.account.id}"
    return {"account_id": account_id, **cancellation_service().cancel(account_id, actor, body.reason)}


@router.put(
    "/admin/accounts/{account_id}/consent",
    body=schemas.StaffConsentBody,
    roles=("support", "dpo", "admin"),
    response=schemas.StaffConsentAnswer,
    problems=(404, 503),
)
def set_consent(req: Request, body: schemas.StaffConsentBody, account_id: str) -> dict[str, Any]:
    """Record a customer's marketing answer given to support or the DPO (P18); kept in the history, audited."""
    from shared.bootstrap import consent_service

    identity_service().account(account_id)  # 404 for an account that does not exist
    source = "dpo" if "dpo" in (req.principal.account.roles or []) else "support"
    consent = consent_service().change(account_id, body.marketing, source, actor=f"staff:{req.principal.account.id}")
    return {"account_id": account_id, **consent}
