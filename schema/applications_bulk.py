"""Bulk filing (docs/api.md, "Bulk filing"): ``createApplications`` — all or none, every
problem of every row — and ``submitApplications`` — one outcome per id. The use cases are
resolvers/applications/bulk.py; the answers are read again by id in three statements for
the lot (``queries.applications_by_id``)."""

from __future__ import annotations

import strawberry

from resolvers.applications import bulk, queries
from resolvers.applications import use_cases as applications
from resolvers.applications.queries import ApplicationView
from resolvers.core.context import Context
from schema.applications import Application, CreateApplicationInput, Shared
from schema.errors import UserError, run_mutation
from schema.identity import from_global_id


@strawberry.input(description="At most bulk_applications_max rows (rules/limits.yaml; 100). Send them as a variable: "
                              "a literal of 100 rows is longer than a query may be.")
class CreateApplicationsInput:
    applications: list[CreateApplicationInput]
    idempotency_key: str | None = strawberry.field(
        default=None, description="The same key and input answer the first answer and create nothing again.")


@strawberry.type
class CreateApplicationsPayload:
    applications: list[Application] | None = strawberry.field(description="In the order of the rows; null when any row was refused.")
    errors: list[UserError] = strawberry.field(description="Every problem of every row; field = [\"input\", \"applications\", i, …].")


@strawberry.input(description="At most bulk_applications_max ids (rules/limits.yaml; 100), each once.")
class SubmitApplicationsInput:
    application_ids: list[strawberry.ID]
    idempotency_key: str | None = strawberry.field(
        default=None, description="The same key and ids answer the recorded outcomes and submit nothing twice.")


@strawberry.type(description="The outcome of one id: the application as submitted, or why it was not.")
class SubmitApplicationsResult:
    application_id: strawberry.ID
    application: Application | None
    errors: list[UserError] = strawberry.field(description="Empty when submitted; field = [\"input\", \"applicationIds\", i, …].")


@strawberry.type
class SubmitApplicationsPayload:
    results: list[SubmitApplicationsResult] = strawberry.field(description="One per id, in input order; empty when errors is not.")
    errors: list[UserError] = strawberry.field(description="What refused the whole call (the list, the key): then nothing was submitted.")


def _row(row: CreateApplicationInput) -> applications.ApplicationData:
    """A row as ``createApplication`` reads its input, but with no early refusal: every
    problem, a row's goods over the limit too, is reported with the others."""
    goods = None if row.goods is None else [
        applications.GoodsInput(g.description, g.quantity, g.hs_code, g.origin_country) for g in row.goods]
    return applications.ApplicationData(
        type=row.type.value, destination_country=row.destination_country, goods_category=row.goods_category,
        invoice_number=row.invoice_number, exporter_name=row.exporter_name, fee_payment=row.fee_payment.value,
        signature_kind=row.signature_kind, consignee=row.consignee, transport=row.transport,
        person_in_charge=row.person_in_charge, goods=goods)


def _pk(value: str) -> int:
    decoded = from_global_id(value)
    return decoded[1] if decoded and decoded[0] == "Application" else -1


@strawberry.type
class ApplicationsBulkMutation:
    @strawberry.mutation(description="Signer or sub-ID: many drafts in one transaction, or none.")
    async def create_applications(self, info: strawberry.Info[Context], input: CreateApplicationsInput) -> CreateApplicationsPayload:
        ctx = info.context

        async def run() -> list[ApplicationView]:
            ids = await bulk.create_applications(ctx, [_row(row) for row in input.applications], input.idempotency_key)
            views = await queries.applications_by_id(ctx, ids)
            return [views[i] for i in ids]

        def ok(views: list[ApplicationView]) -> CreateApplicationsPayload:
            shared = Shared()
            return CreateApplicationsPayload(applications=[Application.from_view(v, shared) for v in views], errors=[])

        return await run_mutation(info, run, ok=ok, failed=lambda errors: CreateApplicationsPayload(applications=None, errors=errors))

    @strawberry.mutation(description="Submit many: each id on its own (a refused one changes nothing and the others go on).")
    async def submit_applications(self, info: strawberry.Info[Context], input: SubmitApplicationsInput) -> SubmitApplicationsPayload:
        ctx = info.context
        ids = [str(i) for i in input.application_ids]

        async def run() -> tuple[list[bulk.Outcome], dict[int, ApplicationView]]:
            outcomes = await bulk.submit_applications(ctx, ids, [_pk(i) for i in ids], input.idempotency_key)
            views = await queries.applications_by_id(ctx, [o.application_id for o in outcomes if o.application_id is not None])
            return outcomes, views

        def ok(done: tuple[list[bulk.Outcome], dict[int, ApplicationView]]) -> SubmitApplicationsPayload:
            outcomes, views = done
            shared = Shared()
            results = []
            for outcome in outcomes:
                view = views.get(outcome.application_id) if outcome.application_id is not None else None
                results.append(SubmitApplicationsResult(
                    application_id=strawberry.ID(ids[outcome.position]),
                    application=Application.from_view(view, shared) if view is not None else None,
                    errors=[UserError(code=r.code, field=r.field, message=r.message(ctx.language)) for r in outcome.refusals]))
            return SubmitApplicationsPayload(results=results, errors=[])

        return await run_mutation(info, run, ok=ok, failed=lambda errors: SubmitApplicationsPayload(results=[], errors=errors))
