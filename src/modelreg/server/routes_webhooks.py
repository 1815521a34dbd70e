"""/api/v1/webhooks: subscriptions, their delivery log and test deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from starlette.responses import Response

from modelreg.server.context import Ctx
from modelreg.server.dispatch import blocking
from modelreg.server.responses import no_content, ok, page
from modelreg.server.routes_models import PageSize, PageToken
from modelreg.server.routing import api_router
from modelreg.server.schemas import WebhookCreate

router = api_router("/api/v1/webhooks", tags=["webhooks"])

WebhookId = Annotated[int, Path(ge=1, le=2**62, description="The webhook's id.")]


@router.post("", status_code=201, summary="Register a webhook")
def create_webhook(ctx: Ctx, body: WebhookCreate) -> Response:
    """Subscribe a URL to future events; the answer carries the signing secret, which is
    not shown again."""
    hook = ctx.registry.service.create_webhook(
        ctx.principal,
        body.url,
        kinds=body.kinds,
        model=body.model,
        secret=body.secret,
        description=body.description,
    )
    return ok(hook.to_dict(), 201)


@router.get("", summary="List webhooks")
def list_webhooks(ctx: Ctx, page_size: PageSize = None, page_token: PageToken = None) -> Response:
    """Every webhook, newest first, without secrets."""
    found = ctx.registry.service.list_webhooks(
        ctx.principal, page_size=page_size, page_token=page_token
    )
    return page(found, lambda w: w.to_dict())


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook")
def delete_webhook(ctx: Ctx, webhook_id: WebhookId) -> Response:
    """Unsubscribe; its pending deliveries are dropped."""
    ctx.registry.service.delete_webhook(ctx.principal, webhook_id)
    return no_content()


@router.post("/{webhook_id}/test", summary="Send a test delivery")
@blocking
def test_webhook(ctx: Ctx, webhook_id: WebhookId) -> Response:
    """Send a signed ``ping`` now; the answer is the logged delivery with the receiver's
    status code or error."""
    return ok(ctx.registry.service.test_webhook(ctx.principal, webhook_id).to_dict())


@router.get("/{webhook_id}/deliveries", summary="Delivery log")
def webhook_deliveries(
    ctx: Ctx, webhook_id: WebhookId, page_size: PageSize = None, page_token: PageToken = None
) -> Response:
    """A webhook's deliveries, newest first: status, attempts, last answer."""
    found = ctx.registry.service.webhook_deliveries(
        ctx.principal, webhook_id, page_size=page_size, page_token=page_token
    )
    return page(found, lambda d: d.to_dict())
