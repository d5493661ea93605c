"""The certificate PDF: who may download it, during the print window, and what it shows
(resolvers/adapters/pdf.py draws it)."""

from __future__ import annotations

from typing import Any

from persistence.models import Application
from resolvers.adapters import pdf
from resolvers.applications import certificates
from resolvers.applications.certificates import canonical, format_access_code
from resolvers.applications.messages import CERTIFICATE_TYPE_NAMES
from resolvers.applications.names import ApplicationState, CertificateType
from resolvers.applications.use_cases import application_to_view
from resolvers.core.clock import tokyo_date
from resolvers.core.context import Context
from resolvers.core.errors import Forbidden, UserFailure
from resolvers.identity.actor import require_viewer


async def certificate(ctx: Context, app_id: int) -> bytes:
    """The certificate PDF: those who may view the application, during the print window."""
    who = await require_viewer(ctx)
    try:
        app = await application_to_view(ctx, who, app_id)
    except UserFailure:
        raise Forbidden() from None
    if (app.state != ApplicationState.ISSUED or app.certificate_number is None or app.issued_at is None
            or not certificates.printable(ctx, app)):
        raise Forbidden()
    async with ctx.services.db.read() as session:
        content = await certificates.content_of(session, app, app.certificate_number, tokyo_date(app.issued_at))
    url = f"{ctx.services.settings.public_url}/verify?number={app.certificate_number}&code={app.access_code}"
    return certificate_pdf(content, app, url)


_ENGLISH_TITLES = {
    CertificateType.ORIGIN_JAPANESE: "CERTIFICATE OF ORIGIN",
    CertificateType.ORIGIN_FOREIGN: "CERTIFICATE OF ORIGIN",
    CertificateType.INVOICE: "INVOICE CERTIFICATION",
    CertificateType.SIGNATURE: "CERTIFICATION OF SIGNATURE",
}


def certificate_pdf(content: dict[str, Any], app: Application, verify_url: str) -> bytes:
    """The signed content of an issued application, as the boxes and text of its PDF."""
    type_name = CERTIFICATE_TYPE_NAMES[CertificateType(app.type)]
    signature = app.signature or ""  # an issued certificate is always signed
    goods = content["goods"] or [{"description": "-", "quantity": "", "hsCode": "", "originCountry": ""}]
    return pdf.certificate_pdf(pdf.CertificateData(
        title=f"{type_name} {app.certificate_number}",
        english_title=_ENGLISH_TITLES[CertificateType(app.type)],
        type_name=type_name,
        certificate_number=str(app.certificate_number),
        issued_on=str(content["issuedOn"]),
        author=content["chamber"]["name"],
        subject=f"sha256:{app.content_hash} sig:{app.signature} kid:{app.key_id}",
        keywords=canonical(content).decode(),
        rows=[
            ("1. Exporter 輸出者", content["exporter"]),
            ("2. Consignee 荷受人", content["consignee"] or "-"),
            ("3. Transport 輸送手段", content["transport"] or "-"),
            ("4. Destination 仕向地", content["destinationCountry"]),
            ("5. Invoice No. インボイス番号", content["invoiceNumber"]),
            ("6. Applicant 申請者", f"{content['applicant']['name']} ({content['applicant']['registrationNumber']})"),
        ],
        goods=[f"{line['description'][:70]}  /  {line['quantity']}  /  {line['hsCode']}  /  {line['originCountry']}"
               for line in goods],
        chamber=f"{content['chamber']['name']} ({content['chamber']['code']})",
        verify_url=verify_url,
        footer=[f"Verify 検証: {verify_url}", f"Access code アクセスコード: {format_access_code(app.access_code)}",
                f"Content SHA-256: {app.content_hash}", f"Ed25519 signature (key {app.key_id}):",
                *(f"    {signature[i:i + 48]}" for i in range(0, len(signature), 48))],
    ))
