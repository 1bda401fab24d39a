"""Routes of the admin function (staff signed in like users, with roles on their account)."""

from __future__ import annotations

from typing import Any

from functions.admin import schemas
from shared.bootstrap import identity_service, privacy_service
from shared.http import Request, Router

router = Router()

PRIVACY_STAFF = ("dpo", "admin")


@router.get("/admin/health")
def health(_: Request) -> dict[str, str]:
    return {"status": "ok"}


@router.post("/admin/privacy/erasures", body=schemas.DpoErasureBody, status=202, roles=PRIVACY_STAFF)
def start_erasure(req: Request, body: schemas.DpoErasureBody) -> dict[str, Any]:
    return privacy_service().start_dpo_erasure(req.principal.account.id, body.account_id, body.reason)


@router.get("/admin/privacy/requests", roles=PRIVACY_STAFF)
def open_requests(_: Request) -> dict[str, Any]:
    return {"requests": privacy_service().open_requests()}


@router.post("/admin/privacy/requests/{request_id}/retry", body=schemas.RetryBody, status=202, roles=PRIVACY_STAFF)
def retry_request(_: Request, body: schemas.RetryBody, request_id: str) -> dict[str, Any]:
    return privacy_service().retry(request_id)


@router.get("/admin/privacy/deletion-records", roles=PRIVACY_STAFF)
def deletion_records(_: Request) -> dict[str, Any]:
    return {"records": privacy_service().deletion_records()}


@router.get("/admin/privacy/records", roles=PRIVACY_STAFF)
def records_of_processing(_: Request) -> dict[str, Any]:
    return privacy_service().records_of_processing()


@router.put("/admin/staff/{account_id}/roles", body=schemas.RolesBody, roles=("admin",))
def set_roles(req: Request, body: schemas.RolesBody, account_id: str) -> dict[str, Any]:
    return privacy_service().set_roles(req.principal.account.id, account_id, list(body.roles), body.reason)


@router.post(
    "/admin/accounts/{account_id}/second-factor/remove",
    body=schemas.SecondFactorRemovalBody,
    roles=("support", "dpo", "admin"),
    problems=(404, 409),
)
def remove_second_factor(req: Request, body: schemas.SecondFactorRemovalBody, account_id: str) -> dict[str, Any]:
    """Support removes a holder's lost second factor (P25): sessions end, the holder is mailed, the call audited."""
    actor = f"staff:{req.principal.account.id}"
    return identity_service().credentials.remove_second_factor(account_id, actor, body.reason)
